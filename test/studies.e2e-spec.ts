import { exportJWK, generateKeyPair } from 'jose';
import { RoundCloser } from '../src/federated/coordinator/round-closer';
import { countQueries } from './helpers/query-counter';
import { codes, TestApi } from './helpers/test-api';

const CREATE = `mutation($input: CreateStudyInput!) { createStudy(input: $input) {
  id title ownerId features label strategy model localEpochs learningRate batchSize minNodes
  roundDeadlineMs clipNorm noiseMultiplier createdAt } }`;
const REGISTER_NODE = `mutation($input: RegisterTrainingNodeInput!) { registerTrainingNode(input: $input) {
  id organizationId name keyThumbprint createdAt } }`;
const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];

describe('studies and training nodes', () => {
  let api: TestApi;
  let researcher: string;

  beforeAll(async () => {
    // No in-process nodes: their work on each new run would fall inside the query counts below.
    api = await TestApi.start({ TRAINING_NODES: 'off' });
    researcher = await api.token('rita', 'RESEARCHER', 'org1');
  });
  afterAll(() => api?.stop());

  it('lets a researcher create a study, with defaults, that everyone can find', async () => {
    const created = await api.ok<{ createStudy: Record<string, unknown> }>(
      CREATE,
      { input: { title: 'Type 2 diabetes risk', features: FEATURES, label: '44054006' } },
      researcher,
    );
    expect(created.createStudy).toMatchObject({
      title: 'Type 2 diabetes risk',
      ownerId: 'rita',
      features: FEATURES,
      label: '44054006',
      strategy: 'FEDAVG',
      model: 'LOGISTIC',
      localEpochs: 1,
      learningRate: 0.1,
      batchSize: 32,
      minNodes: 2,
      roundDeadlineMs: 60000,
      clipNorm: null,
      noiseMultiplier: null,
    });
    const patient = await api.token('pia', 'PATIENT');
    const listed = await api.ok<{ studies: { id: string }[] }>(
      '{ studies { id title } }',
      {},
      patient,
    );
    expect(listed.studies.map((s) => s.id)).toContain(created.createStudy.id);
    const one = await api.ok<{ study: { id: string } }>(
      'query($id: ID!) { study(id: $id) { id } }',
      { id: created.createStudy.id },
      patient,
    );
    expect(one.study.id).toBe(created.createStudy.id);
    expect(
      (await api.ok<{ study: unknown }>('query { study(id: "not-a-study") { id } }', {}, patient))
        .study,
    ).toBeNull();
  });

  it('keeps the privacy settings of a differentially private study', async () => {
    const created = await api.ok<{ createStudy: Record<string, unknown> }>(
      CREATE,
      {
        input: {
          title: 'DP study',
          features: FEATURES.slice(0, 2),
          label: '44054006',
          strategy: 'FEDADAM',
          clipNorm: 1.5,
          noiseMultiplier: 1.1,
          minNodes: 3,
        },
      },
      researcher,
    );
    expect(created.createStudy).toMatchObject({
      strategy: 'FEDADAM',
      clipNorm: 1.5,
      noiseMultiplier: 1.1,
      minNodes: 3,
    });
  });

  it.each([
    [{ title: '' }, 'input.title'],
    [{ features: [] }, 'input.features'],
    [{ features: ['glucose'] }, 'input.features'],
    [{ features: ['2345-7', '2345-7'] }, 'input.features'],
    [{ features: ['1234-5'] }, 'input.features'],
    [{ label: 'diabetes' }, 'input.label'],
    [{ learningRate: 0 }, 'input.learningRate'],
    [{ localEpochs: 0 }, 'input.localEpochs'],
    [{ minNodes: 1000 }, 'input.minNodes'],
    [{ noiseMultiplier: 1 }, 'input.clipNorm'],
    [{ strategy: 'TRIMMED_MEAN', clipNorm: 1, noiseMultiplier: 1 }, 'input.strategy'],
    // Settings no round could be aggregated or accounted for with.
    [{ clipNorm: 1e20 }, 'input.clipNorm'],
    [{ clipNorm: 1, noiseMultiplier: 1e-300 }, 'input.noiseMultiplier'],
    [{ clipNorm: 1, noiseMultiplier: 1e6 }, 'input.noiseMultiplier'],
    [{ clipNorm: 1000, noiseMultiplier: 2 }, 'input.noiseMultiplier'],
  ])('rejects a study that cannot run (%j), naming the field', async (change, field) => {
    const res = await api.gql(
      CREATE,
      { input: { title: 'x', features: FEATURES, label: '44054006', ...change } },
      researcher,
    );
    expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    expect(res.errors?.[0].extensions.field).toBe(field);
  });

  it('creates studies for researchers only', async () => {
    const res = await api.gql(
      CREATE,
      { input: { title: 'x', features: FEATURES, label: '44054006' } },
      await api.token('pia', 'PATIENT'),
    );
    expect(codes(res)).toEqual(['FORBIDDEN']);
  });

  describe('training nodes', () => {
    const publicJwk = async () =>
      exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);

    it('are registered by an administrator with their public key', async () => {
      const admin = await api.token('root', 'ADMIN');
      const jwk = await publicJwk();
      const res = await api.ok<{
        registerTrainingNode: { organizationId: string; keyThumbprint: string };
      }>(
        REGISTER_NODE,
        { input: { organizationId: 'org1', name: 'Hospital A node', publicKeyJwk: jwk } },
        admin,
      );
      expect(res.registerTrainingNode).toMatchObject({ organizationId: 'org1' });
      expect(res.registerTrainingNode.keyThumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const again = await api.gql(
        REGISTER_NODE,
        { input: { organizationId: 'org1', name: 'Same key', publicKeyJwk: jwk } },
        admin,
      );
      expect(codes(again)).toEqual(['CONFLICT']);
    });

    it('refuse private keys, other curves, unknown organisations and non-admins', async () => {
      const admin = await api.token('root', 'ADMIN');
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      const rsa = await exportJWK(
        (await generateKeyPair('RS256', { extractable: true })).publicKey,
      );
      const cases: [unknown, string, string][] = [
        [await exportJWK(privateKey), 'org1', 'input.publicKeyJwk'],
        [rsa, 'org1', 'input.publicKeyJwk'],
        [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'BBBB' }, 'org1', 'input.publicKeyJwk'],
        [await publicJwk(), 'nowhere', 'input.organizationId'],
      ];
      for (const [jwk, org, field] of cases) {
        const res = await api.gql(
          REGISTER_NODE,
          { input: { organizationId: org, name: 'n', publicKeyJwk: jwk } },
          admin,
        );
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors?.[0].extensions.field).toBe(field);
      }
      const res = await api.gql(
        REGISTER_NODE,
        { input: { organizationId: 'org1', name: 'n', publicKeyJwk: await publicJwk() } },
        researcher,
      );
      expect(codes(res)).toEqual(['FORBIDDEN']);
    });
  });

  describe('a list of studies with their runs', () => {
    const LISTED = `{ studies { id runs { id status metrics { round } updates { id } } } }`;
    type Listed = { studies: { id: string; runs: { id: string }[] }[] };

    /** Starts a run of a new study; answers the study's id and the run's. */
    const studyWithRun = async (title: string) => {
      const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
        CREATE,
        { input: { title, features: FEATURES, label: '44054006' } },
        researcher,
      );
      const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
        'mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }',
        { s: createStudy.id },
        researcher,
      );
      return { study: createStudy.id, run: startTraining.id };
    };
    /** Queries the listing costs, and what it answered. */
    const listing = async () => {
      let answer: Listed | undefined;
      const queries = await countQueries(
        ['training_runs', 'training_rounds', 'model_updates'],
        async () => {
          answer = await api.ok<Listed>(LISTED, {}, researcher);
        },
      );
      return { queries, answer: answer! };
    };

    // The closer's sweep reads rounds every second; the count is about the listing alone.
    beforeAll(() => api.server.app.get(RoundCloser).stopSweeping());

    it("reads every study's runs, and every run's metrics and updates, in one query each", async () => {
      const first = [await studyWithRun('Listed 1'), await studyWithRun('Listed 2')];
      const few = await listing();
      const more = [];
      for (let i = 3; i <= 8; i++) more.push(await studyWithRun(`Listed ${i}`));
      const many = await listing();
      expect(many.queries).toBe(few.queries);
      expect(many.queries).toBeLessThanOrEqual(3);
      for (const { study, run } of [...first, ...more]) {
        const listed = many.answer.studies.find((s) => s.id === study)!;
        expect(listed.runs.map((r) => r.id)).toEqual([run]);
      }
    });
  });
});
