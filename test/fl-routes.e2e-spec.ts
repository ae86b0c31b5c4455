// The federated binary routes as HTTP: which content type an answer carries (octet-stream only
// for a model, JSON for every error), the limits and decoding errors of an update's body, and
// who may download a run's model.
import { request } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { registerSimulatedNode } from './helpers/simulated-node';
import { TestApi } from './helpers/test-api';

const MB = 1024 * 1024;

describe('the federated binary routes', () => {
  let api: TestApi;
  let researcher: string;
  let admin: string;
  /** A NODE token naming no registered node. */
  let node: string;
  /** A registered node's token. */
  let registered: string;
  let runId: string;

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'off' });
    researcher = await api.token('fl-routes-researcher', 'RESEARCHER');
    admin = await api.token('fl-routes-admin', 'ADMIN');
    node = await api.token('fl-routes-node', 'NODE', api.config.orgId);
    registered = (await registerSimulatedNode(api, admin)).token;
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation { createStudy(input: { title: "Routes", features: ["2345-7", "4548-4"],
       label: "44054006" }) { id } }`,
      {},
      researcher,
    );
    runId = (
      await api.ok<{ startTraining: { id: string } }>(
        'mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }',
        { s: createStudy.id },
        researcher,
      )
    ).startTraining.id;
  });
  afterAll(() => api?.stop());

  const get = (path: string, token: string) =>
    fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

  /** The answer is a JSON error with `status` and `code`; answers its message. */
  async function jsonError(res: Response, status: number, code: string): Promise<string> {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json\b/);
    const body = (await res.json()) as {
      errors: { message: string; extensions: { code: string } }[];
    };
    expect(body.errors[0].extensions.code).toBe(code);
    return body.errors[0].message;
  }

  describe('content types', () => {
    it('serves a round model as octet-stream', async () => {
      const res = await get(`/fl/runs/${runId}/rounds/1/model`, registered);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/octet-stream\b/);
      expect((await res.arrayBuffer()).byteLength).toBe(3 * 4);
    });

    it.each([
      ['round 0', () => `/fl/runs/${runId}/rounds/0/model`, 400, 'BAD_USER_INPUT'],
      ['a round never opened', () => `/fl/runs/${runId}/rounds/7/model`, 404, 'NOT_FOUND'],
      ['a run id that is not a UUID', () => '/fl/runs/not-a-uuid/rounds/1/model', 404, 'NOT_FOUND'],
    ])('answers %s on the round model route as JSON', async (_, path, status, code) => {
      await jsonError(await get(path(), registered), status, code);
    });

    it.each([
      ['a run id that is not a UUID', () => '/fl/runs/not-a-uuid/model', 404, 'NOT_FOUND'],
      ['an unknown format', () => `/fl/runs/${runId}/model?format=onnx`, 400, 'BAD_USER_INPUT'],
      [
        'an unknown format of an unknown run',
        () => '/fl/runs/not-a-uuid/model?format=onnx',
        400,
        'BAD_USER_INPUT',
      ],
    ])('answers %s on the run model route as JSON', async (_, path, status, code) => {
      await jsonError(await get(path(), researcher), status, code);
    });

    it('serves no model to a NODE token that names no registered node', async () => {
      for (const path of [`/fl/runs/${runId}/rounds/1/model`, `/fl/runs/${runId}/model`]) {
        expect(await jsonError(await get(path, node), 403, 'FORBIDDEN')).toMatch(
          /no registered training node/,
        );
      }
    });

    it('serves the run model as float32 octet-stream or as a model.json download', async () => {
      const raw = await get(`/fl/runs/${runId}/model?format=float32`, researcher);
      expect(raw.headers.get('content-type')).toMatch(/^application\/octet-stream\b/);
      const json = await get(`/fl/runs/${runId}/model`, researcher);
      expect(json.headers.get('content-type')).toMatch(/^application\/json\b/);
      expect(json.headers.get('content-disposition')).toContain('model.json');
    });
  });

  it('has no model for a run that ended before any round closed', async () => {
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation { createStudy(input: { title: "Cancelled", features: ["2345-7"],
       label: "44054006" }) { id } }`,
      {},
      researcher,
    );
    const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
      'mutation($s: ID!) { startTraining(studyId: $s, rounds: 2) { id } }',
      { s: createStudy.id },
      researcher,
    );
    // While it runs, its latest model is the initial one, which nodes train from.
    expect(
      (await get(`/fl/runs/${startTraining.id}/model?format=float32`, researcher)).status,
    ).toBe(200);
    await api.ok(
      'mutation($id: ID!) { cancelTraining(runId: $id) { id } }',
      { id: startTraining.id },
      researcher,
    );
    const message = await jsonError(
      await get(`/fl/runs/${startTraining.id}/model`, researcher),
      404,
      'NOT_FOUND',
    );
    expect(message).toMatch(/no round of it closed/);
  });

  describe('who may download', () => {
    it('lets ADMIN download a run’s model, as it may read the run and deploy it', async () => {
      const raw = await get(`/fl/runs/${runId}/model?format=float32`, admin);
      expect(raw.status).toBe(200);
      expect((await raw.arrayBuffer()).byteLength).toBe(3 * 4);
      const json = await get(`/fl/runs/${runId}/model`, admin);
      expect(json.status).toBe(200);
      expect(await json.json()).toHaveProperty('modelTopology');
    });

    it('keeps round models from ADMIN', async () => {
      await jsonError(await get(`/fl/runs/${runId}/rounds/1/model`, admin), 403, 'FORBIDDEN');
    });
  });

  describe('an update’s body', () => {
    const postUpdate = (
      body: Uint8Array,
      headers: Record<string, string> = {},
      token = registered,
    ) =>
      fetch(`${api.url}/fl/runs/${runId}/rounds/1/updates`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/octet-stream',
          'x-custodia-manifest': 'x',
          ...headers,
        },
        body,
      });

    it('refuses one over 64 MB, naming the limit of this route', async () => {
      const message = await jsonError(
        await postUpdate(new Uint8Array(70 * MB)),
        413,
        'BAD_USER_INPUT',
      );
      expect(message).toMatch(/64MB/);
      expect(message).not.toMatch(/1MB|importBundle/);
    });

    it('refuses one that inflates past 64 MB, naming the limit of this route', async () => {
      const bomb = gzipSync(new Uint8Array(65 * MB));
      const message = await jsonError(
        await postUpdate(bomb, { 'content-encoding': 'gzip' }),
        413,
        'BAD_USER_INPUT',
      );
      expect(message).toMatch(/64MB/);
    });

    it('says that a body sent as gzip that is not gzip could not be decoded', async () => {
      const message = await jsonError(
        await postUpdate(new Uint8Array(64).fill(7), { 'content-encoding': 'gzip' }),
        400,
        'BAD_USER_INPUT',
      );
      expect(message).toMatch(/could not be decoded.*gzip/);
      expect(message).not.toMatch(/JSON/);
    });

    it('says the same of a GraphQL body sent as gzip that is not gzip', async () => {
      const res = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: '{"query":"{ __typename }"}',
      });
      expect(await jsonError(res, 400, 'BAD_USER_INPUT')).toMatch(/could not be decoded/);
    });

    it.each([
      ['without a token', undefined, 401, 'UNAUTHENTICATED'],
      ['with a token that does not verify', 'not.a.token', 401, 'UNAUTHENTICATED'],
      ['with a role other than NODE', 'researcher', 403, 'FORBIDDEN'],
    ])(
      'answers one sent %s before reading it (a 60 MB body is never held)',
      async (_, token, status, code) => {
        const bearer = token === 'researcher' ? researcher : token;
        // Headers and a first megabyte only: the answer must come without the rest.
        const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(`${api.url}/fl/runs/${runId}/rounds/1/updates`, {
            method: 'POST',
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(60 * MB),
              'x-custodia-manifest': 'x',
              ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
            },
          });
          req.on('response', (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
            res.on('error', reject);
          });
          // The server may close the connection once it has answered.
          req.on('error', () => undefined);
          req.write(new Uint8Array(MB));
        });
        expect(answer.status).toBe(status);
        expect(JSON.parse(answer.body).errors[0].extensions.code).toBe(code);
      },
    );

    it('takes a manifest that lists 1,000 contributors (52 kB of header)', async () => {
      // 1,000 UUIDs in a signed manifest are about 52 kB of header: past Node's 16 kB default.
      const ids = Array.from(
        { length: 1000 },
        (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      );
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const manifest = `${b64({ alg: 'ES256' })}.${b64({ nodeId: 'fl-routes-node', contributors: ids })}.sig`;
      const answered = await postUpdate(new Uint8Array(12), { 'x-custodia-manifest': manifest });
      // Read and judged (its signature is no signature), not refused for its size.
      expect(answered.status).toBe(422);
    });

    it('reads no body for a NODE token that names no registered node', async () => {
      const answered = await postUpdate(new Uint8Array(70 * MB), {}, node);
      expect(await jsonError(answered, 403, 'FORBIDDEN')).toMatch(/no registered training node/);
    });

    it('answers headers past 2 MiB with a JSON 431', async () => {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(api.url).port), '127.0.0.1');
        let got = '';
        socket.on('data', (d) => (got += d.toString()));
        socket.on('close', () => resolve(got));
        socket.on('error', (e) => (got ? resolve(got) : reject(e)));
        socket.write(
          `POST /fl/runs/${runId}/rounds/1/updates HTTP/1.1\r\nHost: x\r\n` +
            `X-Custodia-Manifest: ${'a'.repeat(2 * MB + 1024)}\r\n\r\n`,
        );
      });
      expect(answer).toMatch(/^HTTP\/1.1 431 /);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
      expect(body.errors[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
      expect(body.errors[0].message).toMatch(/headers exceed 2 MiB/);
    });

    it('still calls a GraphQL body that is not JSON not valid JSON', async () => {
      const res = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync('{"query":'),
      });
      expect(await jsonError(res, 400, 'BAD_USER_INPUT')).toMatch(/not valid JSON/);
    });
  });
});
