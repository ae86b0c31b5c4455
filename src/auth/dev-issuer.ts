// The development token issuer of embedded mode: an ES256 key pair kept in the data dir,
// its public half served as a JWKS. Production configures an external identity provider
// (AUTH_JWKS_URL) instead, and then this issuer refuses to sign.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, JWK, SignJWT } from 'jose';
import { identifierProblem } from './identifiers';
import { Role } from './roles';

const ALG = 'ES256';

/**
 * A subject or organisation name the development issuer puts in a token: 1–255 UTF-16 units,
 * no spaces, control characters or unpaired surrogates (the verifier refuses those in any
 * token, so the issuer never mints one).
 */
export function isDevName(value: string): boolean {
  return value !== '' && !/\s/.test(value) && identifierProblem(value) === null;
}

export const DEV_NAME_RULE = 'must be 1–255 characters, without spaces or control characters';

export interface DevTokenRequest {
  sub: string;
  roles: Role[];
  org?: string;
  /** Lifetime, e.g. `1h`, `15m`, `30s`, `7d`. */
  ttl?: string;
}

export class DevIssuer {
  private constructor(
    private readonly privateJwk: JWK,
    readonly issuer: string,
    readonly audience: string,
  ) {}

  /** Loads the key pair from `<dataDir>/dev-issuer.jwk.json`, creating it (mode 0600) once. */
  static async open(dataDir: string, issuer: string, audience: string): Promise<DevIssuer> {
    const file = join(dataDir, 'dev-issuer.jwk.json');
    if (!existsSync(file)) {
      await mkdir(dataDir, { recursive: true });
      const { privateKey } = await generateKeyPair(ALG, { extractable: true });
      const jwk = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: ALG, use: 'sig' };
      try {
        await writeFile(file, JSON.stringify(jwk) + '\n', { mode: 0o600, flag: 'wx' });
        await chmod(file, 0o600);
      } catch (e) {
        // Another process created it first: use theirs.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    return new DevIssuer(JSON.parse(await readFile(file, 'utf8')) as JWK, issuer, audience);
  }

  get jwks(): { keys: JWK[] } {
    const { kid, kty, crv, x, y, alg, use } = this.privateJwk;
    return { keys: [{ kid, kty, crv, x, y, alg, use }] };
  }

  async sign(req: DevTokenRequest): Promise<string> {
    const key = await importJWK(this.privateJwk, ALG);
    const claims: Record<string, unknown> = { roles: req.roles };
    if (req.org) claims.org = req.org;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: this.privateJwk.kid, typ: 'JWT' })
      .setSubject(req.sub)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime(req.ttl ?? '1h')
      .sign(key);
  }
}
