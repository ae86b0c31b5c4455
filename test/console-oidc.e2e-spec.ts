// The console's sign-in with an external identity provider, in a real browser: OpenID Connect
// authorization code with PKCE (S256) against a tiny provider served by this suite (authorize
// redirects back with a code; the token endpoint checks the PKCE verifier and signs JWTs with
// a key whose JWKS the API trusts). The token ends up in memory only: not in the URL, not in
// localStorage or sessionStorage; the development sign-in is absent.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, JWK, SignJWT } from 'jose';
import { Browser, BrowserContext, Page } from 'playwright-core';
import { consoleCsp } from '../src/console';
import { ensureConsoleBuilt } from './helpers/console-build';
import { checkPage, launchChromium, openConsole, storedInBrowser } from './helpers/console-browser';
import { TestApi } from './helpers/test-api';

const CLIENT_ID = 'custodia-console';
const API_AUDIENCE = 'custodia-api';

interface PendingCode {
  challenge: string;
  redirectUri: string;
  nonce: string;
  used: boolean;
}

/** An OpenID provider just big enough for the console: one user, public client, PKCE S256. */
class TinyOidcProvider {
  readonly codes = new Map<string, PendingCode>();
  /** Each token request and whether it was granted, with the reason when not. */
  readonly exchanges: { granted: boolean; reason?: string }[] = [];
  readonly issued: string[] = [];
  /** Where the console expects the provider's answer. */
  redirectUri = '';
  /** The console's origin, allowed to call the token endpoint from the page. */
  consoleOrigin = '';
  user = { sub: 'dr-oidc', roles: ['CLINICIAN'], org: 'org1' };
  private server!: Server;
  private key!: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  private jwk!: JWK;
  url = '';

  async start(): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    this.key = privateKey;
    this.jwk = { ...(await exportJWK(publicKey)), kid: randomUUID(), alg: 'ES256', use: 'sig' };
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    if (req.method === 'GET' && url.pathname === '/jwks') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [this.jwk] }));
    } else if (req.method === 'GET' && url.pathname === '/authorize') {
      this.authorize(url.searchParams, res);
    } else if (req.method === 'POST' && url.pathname === '/token') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      await this.token(new URLSearchParams(body), res);
    } else {
      res.statusCode = 404;
      res.end();
    }
  }

  /** The user is signed in already: answer the client at once with a code. */
  private authorize(q: URLSearchParams, res: ServerResponse): void {
    const refuse = (why: string) => {
      res.statusCode = 400;
      res.end(why);
    };
    if (q.get('response_type') !== 'code') return refuse('response_type must be code');
    if (q.get('client_id') !== CLIENT_ID) return refuse('unknown client');
    if (q.get('redirect_uri') !== this.redirectUri) return refuse('unregistered redirect_uri');
    if (q.get('code_challenge_method') !== 'S256') return refuse('PKCE S256 is required');
    const challenge = q.get('code_challenge') ?? '';
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) return refuse('bad code_challenge');
    if (!q.get('scope')?.split(' ').includes('openid')) return refuse('scope must hold openid');
    const code = randomBytes(16).toString('hex');
    this.codes.set(code, {
      challenge,
      redirectUri: this.redirectUri,
      nonce: q.get('nonce') ?? '',
      used: false,
    });
    const back = new URL(this.redirectUri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', q.get('state') ?? '');
    res.statusCode = 302;
    res.setHeader('location', back.toString());
    res.end();
  }

  private async token(form: URLSearchParams, res: ServerResponse): Promise<void> {
    res.setHeader('access-control-allow-origin', this.consoleOrigin);
    res.setHeader('cache-control', 'no-store');
    res.setHeader('content-type', 'application/json');
    const pending = this.codes.get(form.get('code') ?? '');
    const verifier = form.get('code_verifier') ?? '';
    const reason =
      form.get('grant_type') !== 'authorization_code'
        ? 'grant_type'
        : !pending || pending.used
          ? 'unknown or used code'
          : form.get('client_id') !== CLIENT_ID
            ? 'client_id'
            : form.get('redirect_uri') !== pending.redirectUri
              ? 'redirect_uri'
              : createHash('sha256').update(verifier).digest('base64url') !== pending.challenge
                ? 'PKCE verifier does not match the challenge'
                : undefined;
    this.exchanges.push({ granted: !reason, ...(reason ? { reason } : {}) });
    if (reason || !pending) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: 'invalid_grant' }));
      return;
    }
    pending.used = true;
    const sign = (claims: Record<string, unknown>, audience: string) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: this.jwk.kid, typ: 'JWT' })
        .setIssuer(this.url)
        .setSubject(this.user.sub)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(this.key);
    const access = await sign({ roles: this.user.roles, org: this.user.org }, API_AUDIENCE);
    const id = await sign({ nonce: pending.nonce }, CLIENT_ID);
    this.issued.push(access, id);
    res.end(
      JSON.stringify({ access_token: access, id_token: id, token_type: 'Bearer', expires_in: 300 }),
    );
  }
}

describe('the console’s sign-in with an external OpenID Connect provider', () => {
  const idp = new TinyOidcProvider();
  let api: TestApi;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const browserProblems: string[] = [];
  /** Every request the pages made: its URL and its Authorization header. */
  const requests: { url: string; authorization?: string }[] = [];

  beforeAll(async () => {
    ensureConsoleBuilt();
    await idp.start();
    api = await TestApi.start({
      AUTH_JWKS_URL: `${idp.url}/jwks`,
      AUTH_ISSUER: idp.url,
      AUTH_AUDIENCE: API_AUDIENCE,
      OIDC_AUTHORIZATION_ENDPOINT: `${idp.url}/authorize`,
      OIDC_TOKEN_ENDPOINT: `${idp.url}/token`,
      OIDC_CLIENT_ID: CLIENT_ID,
    });
    idp.redirectUri = `${api.url}/console/`;
    idp.consoleOrigin = new URL(api.url).origin;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    context.on('request', (r) =>
      requests.push({ url: r.url(), authorization: r.headers()['authorization'] }),
    );
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
    await idp.stop();
  });

  it('tells the console to sign in through the provider, lets it reach the token endpoint, and has no dev sign-in', async () => {
    const config = await fetch(`${api.url}/console/config.json`);
    expect(config.status).toBe(200);
    await expect(config.json()).resolves.toEqual({
      mode: 'oidc',
      authorizationEndpoint: `${idp.url}/authorize`,
      tokenEndpoint: `${idp.url}/token`,
      clientId: CLIENT_ID,
      scope: 'openid',
    });
    const csp = config.headers.get('content-security-policy');
    expect(csp).toBe(consoleCsp([idp.url]));
    expect(csp).toContain(`connect-src 'self' ${idp.url};`);
    expect(csp).toContain("script-src 'self';");
    const devToken = await fetch(`${api.url}/auth/dev-token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sub: 'mallory', role: 'ADMIN' }),
    });
    expect(devToken.status).toBe(404);
  });

  it('signs in with authorization code and PKCE, and calls the API with the provider’s token', async () => {
    page = await openConsole(context, api.url, browserProblems);
    expect(await page.getByLabel('Subject (user id)').count()).toBe(0);
    await checkPage(page, 'oidc-sign-in');
    await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await expect(page.locator('header .who').textContent()).resolves.toContain(
      'dr-oidc · clinician · org1',
    );
    await page.getByText('No patient has granted you access.').waitFor();
    // One code, exchanged once, with the verifier whose S256 challenge went to /authorize.
    expect(idp.exchanges).toEqual([{ granted: true }]);
    expect([...idp.codes.values()].map((c) => c.used)).toEqual([true]);
    const authorize = requests.find((r) => r.url.startsWith(`${idp.url}/authorize`));
    expect(new URL(authorize!.url).searchParams.get('code_challenge_method')).toBe('S256');
    // The API was called with the provider's access token, in the header.
    const [access] = idp.issued;
    const graphql = requests.filter((r) => r.url === `${api.url}/graphql`);
    expect(graphql.length).toBeGreaterThan(0);
    for (const r of graphql) expect(r.authorization).toBe(`Bearer ${access}`);
    await checkPage(page, 'oidc-signed-in');
  });

  it('leaves no token or sign-in secret in the URL or the browser’s storage', async () => {
    expect(new URL(page.url()).pathname).toBe('/console/');
    expect(new URL(page.url()).search).toBe('');
    expect(await storedInBrowser(page)).toEqual({ local: 0, session: 0, cookie: '' });
    for (const { url } of requests) {
      for (const token of idp.issued) expect(url).not.toContain(token);
    }
  });

  it('signs a patient in the same way, making their profile on first sign-in', async () => {
    idp.user = { sub: 'pat-oidc', roles: ['PATIENT'], org: 'org1' };
    const other = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    try {
      const patient = await openConsole(other, api.url, browserProblems);
      await patient.getByRole('button', { name: 'Sign in with your identity provider' }).click();
      await patient.getByRole('button', { name: 'Sign out' }).waitFor();
      await expect(patient.locator('header .who').textContent()).resolves.toContain(
        'pat-oidc · patient · org1',
      );
      const access = idp.issued[idp.issued.length - 2]; // pushed as access, then ID token
      const { me } = await api.ok<{ me: { patientId: string | null } }>(
        `{ me { patientId } }`,
        {},
        access,
      );
      expect(me.patientId).toEqual(expect.any(String));
      await expect(patient.getByTestId('patient-id').textContent()).resolves.toBe(me.patientId);
      expect(await storedInBrowser(patient)).toEqual({ local: 0, session: 0, cookie: '' });
    } finally {
      await other.close();
    }
  });

  it('refuses an answer that no sign-in of this tab started, and removes it from the URL', async () => {
    const before = idp.exchanges.length;
    const forged = await context.newPage();
    forged.on('pageerror', (e) => browserProblems.push(e.message));
    await forged.goto(`${api.url}/console/?code=stolen&state=forged`);
    const alert = forged.locator('[role=alert][data-code=UNAUTHENTICATED]');
    await alert.waitFor();
    await expect(alert.textContent()).resolves.toContain(
      'does not belong to a sign-in started here',
    );
    expect(new URL(forged.url()).search).toBe('');
    expect(idp.exchanges.length).toBe(before);
    expect(await forged.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    await forged.close();
  });

  it('reports no CSP refusal or script error on any page', () => {
    expect(browserProblems).toEqual([]);
  });
});
