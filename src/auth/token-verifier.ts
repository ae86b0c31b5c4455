// Verifies bearer tokens with jose: ES256/RS256 only, issuer, audience, exp and nbf checked
// with 30 s of clock skew (and iat never later than that), roles from the `roles` claim.
// Every failure is reported as UNAUTHENTICATED with a reason that never repeats the token.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  JWTPayload,
  jwtVerify,
  JWTVerifyGetKey,
} from 'jose';
import { UnauthenticatedError } from '../common/errors';
import { Actor } from './actor';
import { identifierProblem, MAX_IDENTIFIER_LENGTH } from './identifiers';
import { isRole } from './roles';

export const ACCEPTED_ALGORITHMS = ['ES256', 'RS256'];
const CLOCK_SKEW_SECONDS = 30;
/** Verified tokens remembered (until they expire), so a client's next call skips ECDSA. */
const CACHE_LIMIT = 10_000;

export interface TokenVerifierOptions {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  /**
   * The one organisation this instance's issuer speaks for (ORG_CLAIMS=own): a token naming
   * another is refused, or an ORGANIZATION grant to that other organisation would admit
   * whomever this issuer says belongs to it. Unset, the token's organisation is taken as is.
   */
  organization?: string;
}

export class TokenVerifier {
  private readonly verified = new Map<string, { actor: Actor; expiresAt: number }>();

  constructor(private readonly options: TokenVerifierOptions) {}

  static forJwks(
    jwks: { keys: object[] },
    issuer: string,
    audience: string,
    organization?: string,
  ): TokenVerifier {
    return new TokenVerifier({
      keys: createLocalJWKSet(jwks as never),
      issuer,
      audience,
      organization,
    });
  }

  static forRemoteJwks(
    url: string,
    issuer: string,
    audience: string,
    organization?: string,
  ): TokenVerifier {
    return new TokenVerifier({
      keys: createRemoteJWKSet(new URL(url)),
      issuer,
      audience,
      organization,
    });
  }

  async verify(token: string): Promise<Actor> {
    const known = this.verified.get(token);
    if (known && Date.now() < known.expiresAt) return known.actor;
    if (known) this.verified.delete(token);
    const { actor, exp } = await this.verifyOnce(token);
    if (this.verified.size >= CACHE_LIMIT) this.verified.delete(this.verified.keys().next().value!);
    // Same tolerance as jose's exp check, so a cached token lapses exactly when a fresh check would fail.
    this.verified.set(token, { actor, expiresAt: (exp + CLOCK_SKEW_SECONDS) * 1000 });
    return actor;
  }

  private async verifyOnce(token: string): Promise<{ actor: Actor; exp: number }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.options.keys, {
        algorithms: ACCEPTED_ALGORITHMS,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (e) {
      throw new UnauthenticatedError(
        `Invalid token: ${reason(e)}. Sign in again for a fresh token.`,
      );
    }
    // jose checks iat only against a maximum age; a token stamped as issued later than now
    // (beyond the skew) comes from a broken or hostile clock and could outlive its lifetime.
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) {
      throw new UnauthenticatedError(
        "Invalid token: it says it was issued in the future. Check the issuer's clock, then sign in again.",
      );
    }
    const actor = actorFrom(payload);
    const own = this.options.organization;
    if (own !== undefined && actor.organizationId !== undefined && actor.organizationId !== own) {
      throw new UnauthenticatedError(
        `Invalid token: it names another organisation than this instance's (${own}). Sign in through your own organisation's API.`,
      );
    }
    return { actor, exp: payload.exp! };
  }
}

function actorFrom(payload: JWTPayload): Actor {
  const roles = payload.roles;
  if (!Array.isArray(roles) || !roles.every(isRole)) {
    throw new UnauthenticatedError(
      'Invalid token: the roles claim must be an array of PATIENT, CLINICIAN, RESEARCHER, ADMIN or NODE.',
    );
  }
  const id = identifierClaim(payload, 'sub');
  const org = payload.org === undefined ? undefined : identifierClaim(payload, 'org');
  return { id, roles: [...new Set(roles)], organizationId: org };
}

/** `sub` and `org`, refused by the rule (identifiers.ts) and never echoed: they may be anything. */
function identifierClaim(payload: JWTPayload, claim: 'sub' | 'org'): string {
  const value = payload[claim];
  if (typeof value !== 'string' || value === '') {
    throw new UnauthenticatedError(`Invalid token: the ${claim} claim must be a non-empty string.`);
  }
  const problem = identifierProblem(value);
  if (problem === 'too long') {
    throw new UnauthenticatedError(
      `Invalid token: the ${claim} claim must be at most ${MAX_IDENTIFIER_LENGTH} characters.`,
    );
  }
  if (problem === 'unstorable') {
    throw new UnauthenticatedError(
      `Invalid token: the ${claim} claim must not contain control characters, bidirectional controls or unpaired surrogates.`,
    );
  }
  return value;
}

function reason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return 'it has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'it is not valid yet';
    if (e.claim === 'iss') return 'it was issued by an untrusted issuer';
    if (e.claim === 'aud') return 'it is meant for another audience';
    return `its ${e.claim} claim is missing or invalid`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed)
    return 'its signing algorithm is not accepted (ES256 or RS256 only)';
  if (e instanceof errors.JWKSNoMatchingKey) return 'it was signed by an unknown key';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (
    e instanceof errors.JWKSTimeout ||
    (e instanceof errors.JOSEError && e.code === 'ERR_JWKS_INVALID')
  )
    return 'the identity provider keys could not be fetched';
  return 'it is malformed';
}
