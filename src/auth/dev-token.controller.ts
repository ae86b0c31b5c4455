// The console's "sign in as" for development: mints a dev-issuer token for a subject, role and
// organisation. Registered only in dev-issuer mode (AuthModule.forRoot): with an external
// identity provider (AUTH_JWKS_URL), or in production, the route does not exist at all.
import { Body, Controller, Header, HttpCode, Inject, Post, Req } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { BadUserInputError, ForbiddenError } from '../common/errors';
import { Public } from './decorators';
import { DEV_NAME_RULE, DevIssuer, isDevName } from './dev-issuer';
import { Role, ROLES } from './roles';

/** The console's people; a training node (NODE) is not one, and gets no token here. */
const CONSOLE_ROLES = ROLES.filter((r) => r !== 'NODE');

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
/** This machine's names, with any port: what a page on this machine reaches the API by. */
const LOCAL_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

/**
 * Whether a loopback request was also meant for this machine: a page whose domain an attacker
 * points at 127.0.0.1 (DNS rebinding) reaches loopback too, but names its own domain in Host
 * and Origin. A browser always sends Host, and Origin on a cross-origin or POST fetch.
 */
function addressedLocally(req: IncomingMessage): boolean {
  const { host, origin } = req.headers;
  if (typeof host !== 'string' || !LOCAL_HOST.test(host)) return false;
  return origin === undefined || LOCAL_HOST.test(/^https?:\/\/(.*)$/i.exec(origin)?.[1] ?? '');
}

/** How long a console token lives: a working session, not a standing credential. */
export const DEV_TOKEN_TTL_SECONDS = 3600;

/** A subject or organisation name as a token carries it. */
const Name = z.string().refine(isDevName, DEV_NAME_RULE);

const DevTokenBody = z.strictObject({
  sub: Name,
  role: z.enum(CONSOLE_ROLES as [string, ...string[]]),
  org: Name.optional(),
});

@Controller('auth')
export class DevTokenController {
  constructor(@Inject(DevIssuer) private readonly issuer: DevIssuer) {}

  @Public()
  @Post('dev-token')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async mint(
    @Body() body: unknown,
    @Req() req: IncomingMessage,
  ): Promise<{ token: string; expiresIn: number }> {
    // Anyone who reaches this route may be anyone, ADMIN included: it answers this machine
    // only, whatever address the server listens on, and only a request addressed to it by a
    // local name (not a rebound domain).
    if (!LOOPBACK.has(req.socket.remoteAddress ?? '') || !addressedLocally(req)) {
      throw new ForbiddenError(
        'The development sign-in answers only this machine, addressed as localhost, 127.0.0.1 or [::1] (open the console there); elsewhere, configure an identity provider (AUTH_JWKS_URL).',
      );
    }
    const parsed = DevTokenBody.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join('.') || 'body';
      throw new BadUserInputError(
        `${field}: ${issue.message}. Send {"sub", "role", "org"?} with role one of ${CONSOLE_ROLES.join(', ')}.`,
        field,
      );
    }
    const { sub, role, org } = parsed.data;
    const token = await this.issuer.sign({
      sub,
      roles: [role as Role],
      org,
      ttl: `${DEV_TOKEN_TTL_SECONDS}s`,
    });
    return { token, expiresIn: DEV_TOKEN_TTL_SECONDS };
  }
}
