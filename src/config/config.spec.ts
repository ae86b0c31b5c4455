import { ConfigError, DEV_AUDIENCE, DEV_ISSUER, loadConfig } from './config';

const KEK = Buffer.alloc(32, 1).toString('base64');

describe('configuration', () => {
  it('defaults to embedded mode with the dev issuer', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, databaseUrl: undefined, orgId: 'org1', kek: undefined });
    expect(c.auth).toEqual({ mode: 'dev', issuer: DEV_ISSUER, audience: DEV_AUDIENCE });
    expect(c.dataDir).toMatch(/\.data$/);
  });

  it('keeps idle HTTP connections longer than a load balancer, and bounds a graceful stop', () => {
    expect(loadConfig({})).toMatchObject({
      http: { keepAliveTimeoutMs: 65_000, headersTimeoutMs: 66_000, requestTimeoutMs: 120_000 },
      shutdownTimeoutMs: 3_000,
    });
    expect(loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '90000' }).http).toEqual({
      keepAliveTimeoutMs: 90_000,
      headersTimeoutMs: 91_000,
      requestTimeoutMs: 120_000,
    });
  });

  it('switches to an external database and JWKS when configured', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/custodia',
      CUSTODIA_KEK: KEK,
      AUTH_JWKS_URL: 'https://idp.example/jwks',
      AUTH_ISSUER: 'https://idp.example/',
      AUTH_AUDIENCE: 'custodia-api',
      PORT: '8080',
    });
    expect(c.databaseUrl).toBe('postgres://u:p@db:5432/custodia');
    expect(c.auth).toEqual({
      mode: 'jwks',
      jwksUrl: 'https://idp.example/jwks',
      issuer: 'https://idp.example/',
      audience: 'custodia-api',
    });
    expect(c.port).toBe(8080);
  });

  it('gives the console its OpenID Connect client when the provider endpoints are configured', () => {
    const c = loadConfig({
      AUTH_JWKS_URL: 'https://idp.example/jwks',
      AUTH_ISSUER: 'https://idp.example/',
      AUTH_AUDIENCE: 'custodia-api',
      OIDC_AUTHORIZATION_ENDPOINT: 'https://idp.example/authorize',
      OIDC_TOKEN_ENDPOINT: 'https://idp.example/token',
      OIDC_CLIENT_ID: 'custodia-console',
    });
    expect(c.auth.mode === 'jwks' && c.auth.oidc).toEqual({
      authorizationEndpoint: 'https://idp.example/authorize',
      tokenEndpoint: 'https://idp.example/token',
      clientId: 'custodia-console',
      scope: 'openid',
    });
  });

  it.each([
    [{ OIDC_CLIENT_ID: 'console' }, 'OIDC_AUTHORIZATION_ENDPOINT is required for OpenID Connect'],
    [
      {
        OIDC_CLIENT_ID: 'console',
        OIDC_AUTHORIZATION_ENDPOINT: 'https://idp/authorize',
        OIDC_TOKEN_ENDPOINT: 'https://idp/token',
      },
      'AUTH_JWKS_URL is required with OIDC_ sign-in',
    ],
    [{ OIDC_TOKEN_ENDPOINT: 'javascript:alert(1)' }, 'OIDC_TOKEN_ENDPOINT must be an http(s) URL'],
    [{ OIDC_SCOPE: 'openid  profile' }, 'OIDC_SCOPE must be scopes separated by single spaces'],
  ])('refuses an incomplete OpenID Connect sign-in %#', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it.each([
    [{ PORT: 'abc' }, 'Invalid configuration: PORT must be a port number'],
    [{ PORT: '70000' }, 'Invalid configuration: PORT must be 0–65535'],
    [
      { DATABASE_URL: 'mysql://x@y/z', CUSTODIA_KEK: KEK },
      'DATABASE_URL must be a postgres:// URL',
    ],
    [{ DATABASE_URL: 'notaurl', CUSTODIA_KEK: KEK }, 'DATABASE_URL must be a URL'],
    [{ OIDC_TOKEN_ENDPOINT: 'notaurl' }, 'OIDC_TOKEN_ENDPOINT must be a URL'],
    [{ DATABASE_URL: 'postgres://u@h/db' }, 'CUSTODIA_KEK is required when DATABASE_URL is set'],
    [{ AUTH_JWKS_URL: 'https://idp/jwks' }, 'AUTH_ISSUER is required when AUTH_JWKS_URL is set'],
    [{ AUTH_JWKS_URL: 'not a url' }, 'AUTH_JWKS_URL must be a URL'],
    [{ ORG_ID: 'has space' }, 'ORG_ID must be'],
    [{ INSTANCE_ID: 'site a' }, 'INSTANCE_ID must be 1–64 letters'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ LEDGER: 'fabric' }, 'FABRIC_PEER_ENDPOINT is required with LEDGER=fabric'],
    [
      {
        LEDGER: 'fabric',
        FABRIC_PEER_ENDPOINT: '127.0.0.1:7151',
        FABRIC_TLS_CA: '/ca.pem',
        FABRIC_MSP_ID: 'Org1MSP',
        FABRIC_CERT: '/cert.pem',
        FABRIC_KEY: '/key.pem',
        ORG_ID: 'org1',
      },
      'ORG_ID must equal FABRIC_MSP_ID',
    ],
    [{ HTTP_KEEP_ALIVE_TIMEOUT_MS: 'soon' }, 'HTTP_KEEP_ALIVE_TIMEOUT_MS must be a number of'],
    [
      { HTTP_KEEP_ALIVE_TIMEOUT_MS: '65000', HTTP_HEADERS_TIMEOUT_MS: '60000' },
      'HTTP_HEADERS_TIMEOUT_MS must be greater than HTTP_KEEP_ALIVE_TIMEOUT_MS',
    ],
    [{ HTTP_REQUEST_TIMEOUT_MS: '30000' }, 'HTTP_REQUEST_TIMEOUT_MS must be at least the headers'],
    [{ SHUTDOWN_TIMEOUT_MS: '100' }, 'SHUTDOWN_TIMEOUT_MS must be at least 500'],
  ])('stops on a bad value with one line naming the variable: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('names the organisation by its MSP id on Fabric', () => {
    const c = loadConfig({
      LEDGER: 'fabric',
      FABRIC_PEER_ENDPOINT: '127.0.0.1:7151',
      FABRIC_TLS_CA: '/ca.pem',
      FABRIC_MSP_ID: 'Org1MSP',
      FABRIC_CERT: '/cert.pem',
      FABRIC_KEY: '/key.pem',
    });
    expect(c).toMatchObject({ ledger: 'fabric', orgId: 'Org1MSP', orgClaims: 'own' });
  });

  it('takes tokens naming any organisation embedded, only its own on Fabric, unless told', () => {
    expect(loadConfig({}).orgClaims).toBe('any');
    expect(loadConfig({ ORG_CLAIMS: 'own' }).orgClaims).toBe('own');
    expect(() => loadConfig({ ORG_CLAIMS: 'some' })).toThrow(/ORG_CLAIMS/);
  });

  it("names an instance among its organisation's only when INSTANCE_ID is given", () => {
    expect(loadConfig({}).instanceId).toBeUndefined();
    expect(loadConfig({ INSTANCE_ID: '' }).instanceId).toBeUndefined();
    expect(loadConfig({ INSTANCE_ID: 'hospital-a' }).instanceId).toBe('hospital-a');
  });

  it('never echoes a malformed key', () => {
    const secret = 'c2VjcmV0LWtleS1tYXRlcmlhbA==';
    try {
      loadConfig({ CUSTODIA_KEK: secret });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(String(e)).toContain('CUSTODIA_KEK must be 32 bytes');
      expect(String(e)).not.toContain(secret);
      expect(String(e).split('\n')).toHaveLength(1);
    }
  });
});
