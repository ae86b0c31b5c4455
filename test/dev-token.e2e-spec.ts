// The console's development sign-in route: it mints working tokens with the dev issuer, says
// what was wrong with a bad request, and does not exist when an external identity provider is
// configured.
import { TestApi } from './helpers/test-api';

function mint(api: TestApi, body: unknown): Promise<Response> {
  return fetch(`${api.url}/auth/dev-token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('POST /auth/dev-token with the development issuer', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await TestApi.start();
  });
  afterAll(() => api.stop());

  it('mints a token for the subject, role and organisation asked for', async () => {
    const res = await mint(api, { sub: 'dr-bob', role: 'CLINICIAN', org: 'org1' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { token, expiresIn } = (await res.json()) as { token: string; expiresIn: number };
    expect(expiresIn).toBe(3600);
    const me = await api.ok<{ me: { id: string; roles: string[]; organizationId: string } }>(
      `{ me { id roles organizationId } }`,
      {},
      token,
    );
    expect(me.me).toEqual({ id: 'dr-bob', roles: ['CLINICIAN'], organizationId: 'org1' });
  });

  it.each([
    [{ sub: 'a b', role: 'PATIENT' }, 'sub'],
    // What the verifier would refuse in any token is never minted (a NUL or a lone surrogate
    // already by the body's check, which names the path from the body).
    [{ sub: 'a\u0000b', role: 'PATIENT' }, 'body.sub'],
    [{ sub: 'a\ud800b', role: 'PATIENT' }, 'body.sub'],
    [{ sub: 'x'.repeat(256), role: 'PATIENT' }, 'sub'],
    [{ sub: 'alice', role: 'PATIENT', org: 'org\u007f' }, 'org'],
    [{ sub: 'alice', role: 'ROOT' }, 'role'],
    [{ sub: 'node-1', role: 'NODE' }, 'role'],
    [{ sub: 'alice' }, 'role'],
    [{ sub: 'alice', role: 'PATIENT', ttl: '100y' }, 'body'],
  ])('refuses %j with BAD_USER_INPUT naming %s', async (body, field) => {
    const res = await mint(api, body);
    expect(res.status).toBe(400);
    const { errors } = (await res.json()) as {
      errors: { message: string; extensions: { code: string; field?: string } }[];
    };
    expect(errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(errors[0].extensions.field).toBe(field);
  });
});

describe('POST /auth/dev-token in production', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await TestApi.start({ NODE_ENV: 'production' });
  });
  afterAll(() => api.stop());

  it('does not exist, even with the development issuer', async () => {
    expect(api.config.auth.mode).toBe('dev');
    const res = await mint(api, { sub: 'mallory', role: 'ADMIN' });
    expect(res.status).toBe(404);
  });
});

describe('POST /auth/dev-token with an external identity provider', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await TestApi.start({
      // Never fetched: no token is verified in this suite.
      AUTH_JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json',
      AUTH_ISSUER: 'https://idp.example.org/',
      AUTH_AUDIENCE: 'custodia',
    });
  });
  afterAll(() => api.stop());

  it('does not exist', async () => {
    const res = await mint(api, { sub: 'mallory', role: 'ADMIN' });
    expect(res.status).toBe(404);
    expect(JSON.stringify(await res.json())).not.toContain('eyJ');
  });
});
