// Who may call the API, and what a request may ask: bearer tokens forged every way we know
// of, roles, GraphQL limits, malformed bodies, and the public endpoints beside GraphQL.
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, importJWK, JWK, SignJWT } from 'jose';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/config';
import { codes, GraphQLResponse, TestApi } from './helpers/test-api';

const ME = '{ me { id roles organizationId patientId } }';

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: object | string) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('authentication and request limits over HTTP', () => {
  let api: TestApi;
  /** The dev issuer's private JWK, as kept in the data dir. */
  let issuerJwk: JWK;

  beforeAll(async () => {
    api = await TestApi.start();
    issuerJwk = JSON.parse(
      await readFile(join(api.config.dataDir, 'dev-issuer.jwk.json'), 'utf8'),
    ) as JWK;
  });
  afterAll(() => api?.stop());

  /** Claims a valid token would carry, with overrides (undefined removes a claim). */
  function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const all: Record<string, unknown> = {
      sub: 'mallory',
      roles: ['PATIENT'],
      iss: DEV_ISSUER,
      aud: DEV_AUDIENCE,
      iat: now(),
      exp: now() + 3600,
      ...overrides,
    };
    for (const k of Object.keys(all)) if (all[k] === undefined) delete all[k];
    return all;
  }

  /** Signs claims with the dev issuer's own private key, exactly as it would. */
  async function issuerSigned(overrides: Record<string, unknown> = {}): Promise<string> {
    return new SignJWT(claims(overrides))
      .setProtectedHeader({ alg: 'ES256', kid: issuerJwk.kid, typ: 'JWT' })
      .sign(await importJWK(issuerJwk, 'ES256'));
  }

  /** HS256 with a public key as the HMAC secret: the classic algorithm-confusion forgery. */
  async function hmacSignedWith(secret: string): Promise<string> {
    return new SignJWT(claims({ roles: ['ADMIN'] }))
      .setProtectedHeader({ alg: 'HS256', kid: issuerJwk.kid, typ: 'JWT' })
      .sign(new TextEncoder().encode(secret));
  }

  function publicJwk(): JWK {
    const { kid, kty, crv, x, y, alg, use } = issuerJwk;
    return { kid, kty, crv, x, y, alg, use };
  }

  function expectRejected(res: GraphQLResponse, token?: string): void {
    expect(codes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.data ?? null).toBeNull();
    expect(res.errors![0].message).toMatch(/token/i);
    if (token) {
      expect(res.errors![0].message).not.toContain(token);
      // Not even the signature or payload part may come back.
      for (const part of token.split('.').filter((p) => p.length > 8)) {
        expect(JSON.stringify(res)).not.toContain(part);
      }
    }
  }

  describe('bearer tokens', () => {
    it('admits a valid token from the dev issuer and reports its subject and roles', async () => {
      const token = await api.token('alice', 'PATIENT', 'org9');
      const res = await api.gql(ME, {}, token);
      expect(res.errors).toBeUndefined();
      expect(res.data).toEqual({
        me: { id: 'alice', roles: ['PATIENT'], organizationId: 'org9', patientId: null },
      });
    });

    it('answers UNAUTHENTICATED to a request without a token, and says how to get one', async () => {
      const res = await api.gql(ME);
      expectRejected(res);
      expect(res.errors![0].message).toMatch(/Authorization: Bearer/);
    });

    it('answers UNAUTHENTICATED to an authorization header that is not a bearer token', async () => {
      const res = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Basic YWxpY2U6c2VjcmV0' },
        body: JSON.stringify({ query: ME }),
      });
      const body = (await res.json()) as GraphQLResponse;
      expectRejected(body, 'YWxpY2U6c2VjcmV0');
    });

    it('tolerates clocks up to 30 s apart on expiry and not-before', async () => {
      for (const token of [
        await issuerSigned({ iat: now() - 3600, exp: now() - 10 }),
        await issuerSigned({ nbf: now() + 10 }),
      ]) {
        const res = await api.gql(ME, {}, token);
        expect(res.errors).toBeUndefined();
        expect(res.data).toMatchObject({ me: { id: 'mallory' } });
      }
    });

    const forgeries: [string, () => Promise<string>, RegExp][] = [
      ['a garbled token', async () => 'garbled.not-a-jwt.at-all-really', /malformed/],
      [
        'a token that expired beyond the 30 s clock skew',
        () => issuerSigned({ iat: now() - 3600, exp: now() - 60 }),
        /expired/,
      ],
      [
        'a token not valid until beyond the 30 s clock skew',
        () => issuerSigned({ nbf: now() + 120 }),
        /not valid yet/,
      ],
      [
        'a token with alg none',
        async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims({ roles: ['ADMIN'] }))}.`,
        /algorithm is not accepted|malformed/,
      ],
      [
        'an HS256 token keyed with the JSON of the public JWK',
        () => hmacSignedWith(JSON.stringify(publicJwk())),
        /algorithm is not accepted/,
      ],
      [
        'an HS256 token keyed with the PEM of the public key',
        () =>
          hmacSignedWith(
            createPublicKey({ key: publicJwk() as never, format: 'jwk' })
              .export({ type: 'spki', format: 'pem' })
              .toString(),
          ),
        /algorithm is not accepted/,
      ],
      [
        'a token from another issuer',
        () => issuerSigned({ iss: 'urn:someone-else' }),
        /untrusted issuer/,
      ],
      [
        'a token for another audience',
        () => issuerSigned({ aud: 'another-api' }),
        /another audience/,
      ],
      ['a token without expiry', () => issuerSigned({ exp: undefined }), /exp claim/],
      [
        'a token signed by a key pair the JWKS does not hold',
        async () => {
          const { privateKey } = await generateKeyPair('ES256');
          return new SignJWT(claims({ roles: ['ADMIN'] }))
            .setProtectedHeader({ alg: 'ES256', kid: 'stranger-key', typ: 'JWT' })
            .sign(privateKey);
        },
        /unknown key/,
      ],
      [
        "a token signed by another key pair under the issuer's key id",
        async () => {
          const { privateKey } = await generateKeyPair('ES256');
          return new SignJWT(claims({ roles: ['ADMIN'] }))
            .setProtectedHeader({ alg: 'ES256', kid: issuerJwk.kid, typ: 'JWT' })
            .sign(privateKey);
        },
        /signature does not verify/,
      ],
      [
        'a genuine token whose payload was edited',
        async () => {
          const [header, , signature] = (await issuerSigned()).split('.');
          return `${header}.${b64(claims({ roles: ['ADMIN'] }))}.${signature}`;
        },
        /signature does not verify/,
      ],
      [
        'a token whose roles claim holds a non-contract role',
        () => issuerSigned({ roles: ['ROOT'] }),
        /roles claim/,
      ],
      [
        'a token whose roles claim is not an array',
        () => issuerSigned({ roles: 'PATIENT' }),
        /roles claim/,
      ],
    ];

    it.each(forgeries)(
      'answers UNAUTHENTICATED to %s, saying why without echoing the token',
      async (_what, forge, reason) => {
        const token = await forge();
        const res = await api.gql(ME, {}, token);
        expectRejected(res, token);
        expect(res.errors![0].message).toMatch(reason);
      },
    );

    it('refuses a forged token on a mutation too, and writes nothing', async () => {
      const before = await patientCount();
      const token = await hmacSignedWith(JSON.stringify(publicJwk()));
      const res = await api.gql(
        'mutation { registerPatient(displayName: "Mallory") { id } }',
        {},
        token,
      );
      expectRejected(res, token);
      expect(await patientCount()).toBe(before);
    });

    it('answers FORBIDDEN to an ADMIN calling registerPatient, and writes nothing', async () => {
      const before = await patientCount();
      const admin = await api.token('root', 'ADMIN');
      const res = await api.gql(
        'mutation { registerPatient(displayName: "Root") { id } }',
        {},
        admin,
      );
      expect(codes(res)).toEqual(['FORBIDDEN']);
      expect(res.data ?? null).toBeNull();
      expect(res.errors![0].message).toMatch(/PATIENT/);
      expect(await patientCount()).toBe(before);
    });

    async function patientCount(): Promise<number> {
      return Number((await api.db.query('SELECT count(*) FROM patients')).rows[0].count);
    }
  });

  describe('GraphQL limits', () => {
    let token: string;
    beforeAll(async () => {
      token = await api.token('alice', 'PATIENT');
    });

    const badInput = (res: GraphQLResponse) =>
      (res.errors ?? []).filter((e) => e.extensions.code === 'BAD_USER_INPUT');

    it('rejects a 50-deep query with BAD_USER_INPUT naming the depth limit', async () => {
      const query = `{ me ${'{ id '.repeat(49)}${'} '.repeat(49)}}`;
      const res = await api.gql(query, {}, token);
      expect(res.data ?? null).toBeNull();
      expect(badInput(res).some((e) => /depth/i.test(e.message))).toBe(true);
      expect(codes(res).every((c) => c === 'BAD_USER_INPUT')).toBe(true);
    });

    it('rejects a query with 100 aliases with BAD_USER_INPUT naming the alias limit', async () => {
      const fields = Array.from({ length: 100 }, (_, i) => `a${i}: me { id }`).join(' ');
      const res = await api.gql(`{ ${fields} }`, {}, token);
      expect(res.data ?? null).toBeNull();
      expect(badInput(res).some((e) => /alias/i.test(e.message))).toBe(true);
      expect(codes(res).every((c) => c === 'BAD_USER_INPUT')).toBe(true);
    });

    it('accepts a query within the limits', async () => {
      const fields = Array.from({ length: 5 }, (_, i) => `a${i}: me { id }`).join(' ');
      const res = await api.gql(`{ ${fields} }`, {}, token);
      expect(res.errors).toBeUndefined();
      expect(Object.keys(res.data!)).toHaveLength(5);
    });

    it('answers BAD_USER_INPUT to a query with a syntax error', async () => {
      const res = await api.gql('{ me { id }', {}, token);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toMatch(/syntax/i);
      expect(res.data ?? null).toBeNull();
    });

    it('answers HTTP 400 with BAD_USER_INPUT to a body that is not JSON', async () => {
      const res = await api.post('{"query": "{ me { id } }"', token);
      expect(res.status).toBe(400);
      const body = (await res.json()) as GraphQLResponse;
      expect(codes(body)).toEqual(['BAD_USER_INPUT']);
      expect(body.errors![0].message).toMatch(/JSON/);
    });
  });

  describe('endpoints beside GraphQL', () => {
    it('serves only the public half of the dev issuer key as JWKS', async () => {
      const res = await fetch(`${api.url}/.well-known/jwks.json`);
      expect(res.status).toBe(200);
      const jwks = (await res.json()) as { keys: JWK[] };
      expect(jwks.keys).toHaveLength(1);
      expect(jwks.keys[0]).toMatchObject({
        kid: issuerJwk.kid,
        kty: 'EC',
        crv: 'P-256',
        x: issuerJwk.x,
        y: issuerJwk.y,
      });
      expect(jwks.keys[0]).not.toHaveProperty('d');
      expect(JSON.stringify(jwks)).not.toContain(issuerJwk.d!);
    });

    it('reports health with the database and the ledger up, without a token', async () => {
      const res = await fetch(`${api.url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: 'ok',
        info: { database: { status: 'up' }, ledger: { status: 'up' } },
      });
    });

    it('exposes Prometheus metrics counting HTTP requests and GraphQL operations', async () => {
      await api.ok(ME, {}, await api.token('metered', 'CLINICIAN'));
      const res = await fetch(`${api.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toContain('# TYPE custodia_http_requests_total counter');
      expect(text).toMatch(/^custodia_http_requests_total\{[^}]*route="\/graphql"[^}]*\} \d+/m);
      expect(text).toContain('# TYPE custodia_graphql_operations_total counter');
      expect(text).toMatch(
        /^custodia_graphql_operations_total\{field="me",outcome="ok"\} [1-9]\d*/m,
      );
    });
  });
});
