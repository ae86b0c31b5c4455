// The HTTP server's connection timeouts, as configured: keep-alive longer than the idle
// timeout of a load balancer in front, so that the balancer never reuses a closing connection.
import type { Server } from 'node:http';
import { TestApi } from './helpers/test-api';

describe('the HTTP server', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await TestApi.start({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '61000' });
  });
  afterAll(() => api?.stop());

  it('keeps idle connections for HTTP_KEEP_ALIVE_TIMEOUT_MS, headers a second longer', () => {
    const http = api.server.app.getHttpServer() as Server;
    expect(api.config.http).toEqual({
      keepAliveTimeoutMs: 61_000,
      headersTimeoutMs: 62_000,
      requestTimeoutMs: 120_000,
    });
    expect(http.keepAliveTimeout).toBe(61_000);
    expect(http.headersTimeout).toBe(62_000);
    expect(http.requestTimeout).toBe(120_000);
  });

  it('tells clients how long an idle connection stays open', async () => {
    const res = await fetch(`${api.url}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('keep-alive')).toBe('timeout=61');
  });

  it('keeps GraphQL answers (health data) out of caches, and does not name its framework', async () => {
    const raw = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('cache-control')).toBe('no-store');
    expect(raw.headers.get('etag')).toBeNull();
    for (const path of ['/graphql', '/health', '/metrics']) {
      const r = path === '/graphql' ? raw : await fetch(`${api.url}${path}`);
      expect(r.headers.get('x-powered-by')).toBeNull();
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('serves GraphQL at /graphql only, not below it', async () => {
    const res = await fetch(`${api.url}/graphql/anything`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0].extensions.code).toBe('NOT_FOUND');
  });

  it('answers the browser’s favicon request with no content rather than an error', async () => {
    expect((await fetch(`${api.url}/favicon.ico`)).status).toBe(204);
  });
});
