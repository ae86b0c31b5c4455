import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ForbiddenError, UnauthenticatedError } from '../common/errors';
import { PUBLIC_KEY, requestOf, ROLES_KEY } from './decorators';
import { Role } from './roles';
import { TokenVerifier } from './token-verifier';

/**
 * Authenticates every GraphQL operation (and any HTTP route not marked @Public) with the
 * bearer token, then admits only the roles the operation declares with @Roles.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: TokenVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const req = requestOf(context);
    // Several root fields of one GraphQL request share one verification.
    req.actor ??= await this.verifier.verify(bearerToken(req.headers.authorization));
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets);
    if (roles && !roles.some((r) => req.actor!.roles.includes(r))) {
      throw new ForbiddenError(`This operation is for the ${roles.join(' or ')} role.`);
    }
    return true;
  }
}

function bearerToken(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match) {
    throw new UnauthenticatedError(
      'Missing bearer token: send `Authorization: Bearer <token>` (in embedded mode, `npx custodia token --sub ID --role ROLE` prints one).',
    );
  }
  return match[1];
}
