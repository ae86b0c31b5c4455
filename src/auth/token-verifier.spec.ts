import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, importJWK, SignJWT } from 'jose';
import { readFile } from 'node:fs/promises';
import { UnauthenticatedError } from '../common/errors';
import { DevIssuer } from './dev-issuer';
import { TokenVerifier } from './token-verifier';

const ISS = 'urn:test-issuer';
const AUD = 'custodia';

describe('token verification', () => {
  let dir: string;
  let issuer: DevIssuer;
  let verifier: TokenVerifier;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodia-auth-'));
    issuer = await DevIssuer.open(dir, ISS, AUD);
    verifier = TokenVerifier.forJwks(issuer.jwks, ISS, AUD);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = () => Math.floor(Date.now() / 1000);
  const rejects = async (token: string, reason: RegExp) => {
    const error = await verifier.verify(token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect((error as Error).message).toMatch(reason);
    expect((error as Error).message).not.toContain(token);
  };

  it('admits a token from the dev issuer with its roles and organisation', async () => {
    const token = await issuer.sign({ sub: 'alice', roles: ['PATIENT'], org: 'org1' });
    await expect(verifier.verify(token)).resolves.toEqual({
      id: 'alice',
      roles: ['PATIENT'],
      organizationId: 'org1',
    });
  });

  it('refuses, where it speaks for one organisation, a token naming another', async () => {
    const own = TokenVerifier.forJwks(issuer.jwks, ISS, AUD, 'Org2MSP');
    const ours = await issuer.sign({ sub: 'dr-bob', roles: ['CLINICIAN'], org: 'Org2MSP' });
    await expect(own.verify(ours)).resolves.toMatchObject({ organizationId: 'Org2MSP' });
    const none = await issuer.sign({ sub: 'alice', roles: ['PATIENT'] });
    await expect(own.verify(none)).resolves.toMatchObject({ organizationId: undefined });
    const theirs = await issuer.sign({ sub: 'dr-eve', roles: ['CLINICIAN'], org: 'Org1MSP' });
    const error = await own.verify(theirs).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect((error as Error).message).toContain("another organisation than this instance's");
    expect((error as Error).message).not.toContain('Org1MSP');
  });

  it('keeps the same key pair across restarts', async () => {
    const again = await DevIssuer.open(dir, ISS, AUD);
    expect(again.jwks).toEqual(issuer.jwks);
    const token = await again.sign({ sub: 'bob', roles: ['CLINICIAN'] });
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: 'bob' });
  });

  it('publishes only the public half of the key', () => {
    expect(JSON.stringify(issuer.jwks)).not.toContain('"d"');
  });

  it('rejects a garbled token', () => rejects('not.a.jwt', /malformed/));

  it('stops admitting a remembered token once it expires', async () => {
    const token = await issuer.sign({ sub: 'a', roles: ['PATIENT'], ttl: '2s' });
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: 'a' });
    // Forty seconds on: past exp and the 30 s of tolerated skew.
    jest.useFakeTimers({ now: Date.now() + 40_000, doNotFake: ['nextTick', 'setImmediate'] });
    try {
      await rejects(token, /expired/);
    } finally {
      jest.useRealTimers();
    }
  });

  it('rejects an expired token', async () => {
    const token = await issuer.sign({ sub: 'a', roles: ['PATIENT'], ttl: '-31s' });
    await rejects(token, /expired/);
  });

  it('tolerates 30 seconds of clock skew', async () => {
    const token = await issuer.sign({ sub: 'a', roles: ['PATIENT'], ttl: '-20s' });
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: 'a' });
  });

  it('rejects a token that is not valid yet', async () => {
    await rejects(await issuerSignRaw({ nbf: now() + 120 }), /not valid yet/);
  });

  it('rejects a token issued in the future, beyond the skew, and admits one within it', async () => {
    await rejects(await issuerSignRaw({ iat: now() + 3600 }), /issued in the future/);
    await expect(verifier.verify(await issuerSignRaw({ iat: now() + 20 }))).resolves.toMatchObject({
      id: 'a',
    });
  });

  it('rejects a token whose signature does not verify', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ roles: ['ADMIN'] })
      .setProtectedHeader({ alg: 'ES256', kid: issuer.jwks.keys[0].kid })
      .setSubject('mallory')
      .setIssuer(ISS)
      .setAudience(AUD)
      .setExpirationTime(now() + 3600)
      .sign(privateKey);
    await rejects(forged, /signature does not verify/);
  });

  it('rejects alg none', () =>
    rejects(
      `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'a', roles: ['ADMIN'], iss: ISS, aud: AUD, exp: now() + 60 })}.`,
      /algorithm is not accepted|malformed/,
    ));

  it('rejects HS256 signed with the public key', async () => {
    const header = b64({ alg: 'HS256', typ: 'JWT', kid: issuer.jwks.keys[0].kid });
    const payload = b64({ sub: 'a', roles: ['ADMIN'], iss: ISS, aud: AUD, exp: now() + 60 });
    const secret = JSON.stringify(issuer.jwks.keys[0]);
    const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
    await rejects(`${header}.${payload}.${sig}`, /algorithm is not accepted/);
  });

  it('rejects a wrong issuer', async () => {
    const other = await DevIssuer.open(dir, 'urn:someone-else', AUD);
    await rejects(await other.sign({ sub: 'a', roles: ['PATIENT'] }), /untrusted issuer/);
  });

  it('rejects a wrong audience', async () => {
    const other = await DevIssuer.open(dir, ISS, 'another-api');
    await rejects(await other.sign({ sub: 'a', roles: ['PATIENT'] }), /another audience/);
  });

  it('rejects an unknown key id', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'custodia-auth-'));
    try {
      const stranger = await DevIssuer.open(otherDir, ISS, AUD);
      await rejects(await stranger.sign({ sub: 'a', roles: ['PATIENT'] }), /unknown key/);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('rejects roles that are not contract roles', async () => {
    await rejects(await issuerSignRaw({ roles: ['ROOT'] }), /roles claim/);
    await rejects(await issuerSignRaw({ roles: 'PATIENT' }), /roles claim/);
  });

  it('rejects a token without expiry', async () => {
    await rejects(await issuerSignRaw({ exp: undefined }), /exp claim/);
  });

  describe.each(['sub', 'org'])('the %s claim', (claim) => {
    const rejectsClaim = async (value: unknown, reason: RegExp) => {
      const token = await issuerSignRaw({ org: 'org1', [claim]: value });
      await rejects(token, reason);
      const error = (await verifier.verify(token).catch((e: unknown) => e)) as Error;
      expect(error.message).toMatch(new RegExp(`the ${claim} claim`));
      if (typeof value === 'string' && value !== '') expect(error.message).not.toContain(value);
    };

    it('admits 255 characters', async () => {
      const token = await issuerSignRaw({ org: 'org1', [claim]: 'x'.repeat(255) });
      await expect(verifier.verify(token)).resolves.toBeDefined();
    });

    it('rejects 256 characters or more, saying so', async () => {
      await rejectsClaim('x'.repeat(256), /at most 255 characters/);
      await rejectsClaim('y'.repeat(4000), /at most 255 characters/);
    });

    it.each([
      ['a NUL', 'a\u0000b'],
      ['a line feed', 'a\nb'],
      ['an escape', '\u001b[31m'],
      ['a DEL', 'a\u007fb'],
      ['a right-to-left override', '\u202enimda'],
      ['a first-strong isolate', 'dr\u2068-house'],
    ])('rejects %s', (_, value) =>
      rejectsClaim(
        value,
        /must not contain control characters, bidirectional controls or unpaired surrogates/,
      ),
    );

    it.each([
      ['a lone high surrogate', 'a\ud800b'],
      ['a lone low surrogate', 'a\udc00b'],
      ['a reversed pair', '\ude00\ud83d'],
    ])('rejects %s', (_, value) =>
      rejectsClaim(
        value,
        /must not contain control characters, bidirectional controls or unpaired surrogates/,
      ),
    );

    it('admits characters outside the BMP written as surrogate pairs', async () => {
      const token = await issuerSignRaw({ org: 'org1', [claim]: 'ärztin-\u{1f600}' });
      await expect(verifier.verify(token)).resolves.toBeDefined();
    });

    it('rejects an empty string or a non-string', async () => {
      await rejectsClaim('', /must be a non-empty string/);
      await rejectsClaim(42, /must be a non-empty string/);
    });
  });

  /** Signs arbitrary claims with the dev issuer's own private key. */
  async function issuerSignRaw(overrides: Record<string, unknown>): Promise<string> {
    const jwk = JSON.parse(await readFile(join(dir, 'dev-issuer.jwk.json'), 'utf8'));
    const claims: Record<string, unknown> = {
      sub: 'a',
      roles: ['PATIENT'],
      iss: ISS,
      aud: AUD,
      exp: now() + 3600,
      ...overrides,
    };
    for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
      .sign(await importJWK(jwk, 'ES256'));
  }
});
