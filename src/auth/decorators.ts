import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { GqlExecutionContext } from '@nestjs/graphql';
import { Actor } from './actor';
import { Role, ROLES } from './roles';

export const ROLES_KEY = 'custodia:roles';
export const PUBLIC_KEY = 'custodia:public';

/**
 * The roles admitted to an operation. Every operation, field resolver and route declares its
 * roles (or @AnyRole, or @Public): the `custodia/require-roles` lint rule makes it an error to
 * forget.
 */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

/** Any authenticated caller, whatever their role: said explicitly, never by omission. */
export const AnyRole = () => Roles(...ROLES);

export const CONSENT_CHECK_KEY = 'custodia:consent-check';

/**
 * Marks an operation whose answer passes through the policy decision point. Enforced: the
 * ConsentCheckInterceptor (consent module) withholds an answer holding any patient's data
 * that the PDP did not permit in the same operation.
 */
export const ConsentChecked = () => SetMetadata(CONSENT_CHECK_KEY, true);

/** An operation that needs no token. */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export interface RequestWithActor {
  headers: Record<string, string | string[] | undefined>;
  actor?: Actor;
}

export function requestOf(context: ExecutionContext): RequestWithActor {
  if (context.getType<string>() === 'graphql') {
    return GqlExecutionContext.create(context).getContext<{ req: RequestWithActor }>().req;
  }
  return context.switchToHttp().getRequest<RequestWithActor>();
}

/** The verified caller of the current request (set by the AuthGuard). */
export const CurrentActor = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  const actor = requestOf(context).actor;
  if (!actor) throw new Error('CurrentActor used on an operation without authentication');
  return actor;
});
