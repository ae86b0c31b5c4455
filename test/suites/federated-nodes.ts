// A whole federated run over the API with its in-process training nodes (one per site), on
// either ledger (test/federated-nodes.e2e-spec.ts: embedded; test/fabric: Fabric):
// a seeded 3-site cohort split non-IID (alpha 0.5), five rounds, and the final model's AUC
// within 0.03 of centralised training on the same patients.
import * as tf from '@tensorflow/tfjs';
import { AccessLog } from '../../src/audit';
import { ConsentService } from '../../src/consent';
import { Coordinator } from '../../src/federated/coordinator/coordinator.service';
import { buildExamples, evaluate, trainCentralised } from '../../src/federated/model';
import { initTensorFlow } from '../../src/federated/model/backend';
import { heldOutSet } from '../../src/federated/node/node-work';
import { generateCohort, toFhir } from '../../src/federated/synthetic/cohort';
import { seedCohort, SeedSummary } from '../../src/federated/synthetic/seed';
import { LEDGER, Ledger } from '../../src/ledger';
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import { TestApi } from '../helpers/test-api';

const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];
const COHORT = { patients: 240, sites: 3, seed: 11, alpha: 0.5 };
const ROUNDS = 5;
/** Grants made at once while the cohort joins the study. */
const GRANTS_AT_ONCE = 8;
/**
 * Seeding, joining and five rounds: about 35 s embedded; on Fabric about 2 min, most of it
 * anchoring the cohort's records one block at a time.
 */
const SETUP_MS = 300_000;

export function federatedNodesSuite(ledger: LedgerUnderTest): void {
  describe(`a federated run with in-process nodes (${ledger.name} ledger)`, () => {
    let api: TestApi;
    let summary: SeedSummary;
    let runId: string;
    let studyId: string;
    const refusing = new Set<string>();

    beforeAll(async () => {
      // On by default only with the embedded ledger; on Fabric an operator turns them on.
      api = await ledger.startApi({ TRAINING_NODES: 'on' });
      summary = await seedCohort(api.server.app, COHORT);
      const researcher = await api.token('fl-researcher', 'RESEARCHER');
      studyId = (
        await api.ok<{ createStudy: { id: string } }>(
          `mutation($f: [String!]!) { createStudy(input: { title: "T2D", features: $f,
           label: "44054006", minNodes: 3, localEpochs: 3, learningRate: 0.1 }) { id } }`,
          { f: FEATURES },
          researcher,
        )
      ).createStudy.id;
      // Nine in ten patients join the study; the rest never do. A few grants at a time, as
      // patients would: on Fabric each waits for its block.
      const consents = api.server.app.get(ConsentService);
      const joining = summary.patients.filter((p, i) => {
        if (i % 10 === 9) refusing.add(p.id);
        return i % 10 !== 9;
      });
      for (let i = 0; i < joining.length; i += GRANTS_AT_ONCE) {
        await Promise.all(
          joining.slice(i, i + GRANTS_AT_ONCE).map((p) =>
            consents.grant(
              { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
              {
                granteeType: 'STUDY',
                granteeId: studyId,
                purpose: 'RESEARCH',
                actions: ['TRAIN'],
              },
            ),
          ),
        );
      }
      const coordinator = api.server.app.get(Coordinator);
      const finished = new Promise<{ status: string }>((resolve) =>
        coordinator.events.on('round', (e: { runId: string; round: number; status: string }) => {
          if (e.runId === runId && (e.round === ROUNDS || e.status === 'FAILED')) resolve(e);
        }),
      );
      runId = (
        await api.ok<{ startTraining: { id: string } }>(
          'mutation($s: ID!, $r: Int!) { startTraining(studyId: $s, rounds: $r) { id } }',
          { s: studyId, r: ROUNDS },
          researcher,
        )
      ).startTraining.id;
      expect((await finished).status).toBe('CLOSED');
    }, SETUP_MS);
    afterAll(() => api?.stop());

    it('completes every round with an update from each site and its provenance on the ledger', async () => {
      const researcher = await api.token('fl-researcher', 'RESEARCHER');
      const { trainingRun } = await api.ok<{
        trainingRun: {
          status: string;
          metrics: { numUpdates: number; auc: number | null }[];
          provenanceTxIds: string[];
        };
      }>(
        'query($id: ID!) { trainingRun(id: $id) { status provenanceTxIds metrics { numUpdates auc } } }',
        { id: runId },
        researcher,
      );
      expect(trainingRun.status).toBe('COMPLETED');
      expect(trainingRun.metrics).toHaveLength(ROUNDS);
      for (const m of trainingRun.metrics) {
        expect(m.numUpdates).toBe(3);
        expect(m.auc).toBeGreaterThan(0.5);
      }
      expect(trainingRun.provenanceTxIds).toHaveLength(ROUNDS);
      const rounds = await api.server.app
        .get<Ledger>(LEDGER)
        .evaluate<unknown[]>('training', 'ListRounds', [runId]);
      expect(rounds).toHaveLength(ROUNDS);
    });

    it('never trains on a patient who did not consent, and shows each use in their access log', async () => {
      const { rows } = await api.db.query(
        `SELECT contributors FROM model_updates WHERE run_id = $1`,
        [runId],
      );
      const used = new Set(rows.flatMap((r) => r.contributors as string[]));
      expect(used.size).toBeGreaterThan(100);
      for (const id of refusing) expect(used.has(id)).toBe(false);
      const someone = [...used][0];
      const { rows: events } = await api.db.query(
        `SELECT action, purpose, decision, consent_id FROM access_events WHERE patient_id = $1 AND action = 'TRAIN'`,
        [someone],
      );
      expect(events).toHaveLength(ROUNDS);
      expect(events[0]).toMatchObject({ purpose: 'RESEARCH', decision: 'PERMIT' });
      expect(events[0].consent_id).toBeTruthy();
      // Each event names, for the patient's eyes only, the run and round that used the records.
      const log = await api.server.app.get(AccessLog).page(someone);
      const reasons = log.items.filter((e) => e.action === 'TRAIN').map((e) => e.reason);
      expect(reasons.sort()).toEqual(
        Array.from(
          { length: ROUNDS },
          (_, i) => `Training run ${runId}, round ${i + 1} (study ${studyId})`,
        ).sort(),
      );
    });

    it('reaches an AUC within 0.03 of centralised training on the same patients', async () => {
      const cohort = generateCohort(COHORT);
      const consenting = summary.patients
        .map((p, i) => ({ p, resources: toFhir(cohort.patients[i], p.id) }))
        .filter(({ p }) => !refusing.has(p.id));
      const definition = { features: FEATURES, label: '44054006', asOf: '2025-01-01T00:00:00Z' };
      // Each site holds out its own fifth, exactly as its node does.
      const held = new Set<string>();
      for (const site of summary.organizations) {
        const ids = consenting.filter(({ p }) => p.organizationId === site.id).map(({ p }) => p.id);
        for (const id of heldOutSet(ids)) held.add(id);
      }
      const split = (heldOut: boolean) =>
        buildExamples(
          consenting
            .filter(({ p }) => held.has(p.id) === heldOut)
            .map(({ resources }) => resources),
          definition,
        );
      const train = split(false);
      const test = split(true);
      const centralised = await trainCentralised({
        preset: 'LOGISTIC',
        features: FEATURES,
        examples: train,
        epochs: 3 * ROUNDS,
        batchSize: 32,
        learningRate: 0.1,
        seed: 7,
      });
      const model = new Float32Array(
        await (
          await fetch(`${api.url}/fl/runs/${runId}/model?format=float32`, {
            headers: { authorization: `Bearer ${await api.token('fl-researcher', 'RESEARCHER')}` },
          })
        ).arrayBuffer(),
      );
      const federated = await evaluate('LOGISTIC', model, test);
      const reference = await evaluate('LOGISTIC', centralised.weights, test);
      // The cohort is learnable, or agreeing with the reference would prove nothing: judged
      // on every consenting patient, as the held-out fifth alone (about 45 patients, a dozen
      // positive, its members set by random patient ids) puts the AUC anywhere from 0.72 to
      // 0.98 from run to run.
      const everyone = {
        x: [...train.x, ...test.x],
        y: [...train.y, ...test.y],
      };
      expect((await evaluate('LOGISTIC', centralised.weights, everyone)).auc).toBeGreaterThan(0.75);
      expect(Math.abs(federated.auc - reference.auc)).toBeLessThanOrEqual(0.03);
    });

    it('serves the final model as a TensorFlow.js model.json with its weights embedded', async () => {
      const res = await fetch(`${api.url}/fl/runs/${runId}/model`, {
        headers: { authorization: `Bearer ${await api.token('fl-researcher', 'RESEARCHER')}` },
      });
      expect(res.status).toBe(200);
      const model = (await res.json()) as {
        format: string;
        weightsManifest: { weights: { name: string }[] }[];
        weightData: string;
        userDefinedMetadata: { features: { code: string }[]; label: string };
      };
      expect(model.format).toBe('layers-model');
      expect(model.weightsManifest[0].weights.map((w) => w.name)).toHaveLength(2);
      expect(Buffer.from(model.weightData, 'base64')).toHaveLength(4 * (FEATURES.length + 1));
      expect(model.userDefinedMetadata.features.map((f) => f.code)).toEqual(FEATURES);
      expect(model.userDefinedMetadata.label).toBe('44054006');

      // TensorFlow.js's own loader, given the URL and the token, fetches the weights the
      // manifest names from beside the model.json: the same weights, and a probability out.
      await initTensorFlow();
      const fetched: string[] = [];
      const loaded = await tf.loadLayersModel(`${api.url}/fl/runs/${runId}/model`, {
        requestInit: {
          headers: { authorization: `Bearer ${await api.token('fl-researcher', 'RESEARCHER')}` },
        },
        // Node's fetch, its JSON parsed in this test's realm: jest runs tests in a realm of
        // their own, whose `instanceof Array` the arrays Node's fetch parses would fail.
        fetchFunc: (async (url: string, init?: RequestInit) => {
          fetched.push(new URL(url).pathname);
          const res = await fetch(url, init);
          const body = Buffer.from(await res.arrayBuffer());
          return {
            ok: res.ok,
            status: res.status,
            json: async () => JSON.parse(body.toString('utf8')) as unknown,
            arrayBuffer: async () => new Uint8Array(body).buffer,
          };
        }) as unknown as typeof fetch,
      });
      expect(fetched).toEqual([`/fl/runs/${runId}/model`, `/fl/runs/${runId}/model/weights.bin`]);
      try {
        const served = loaded.getWeights().flatMap((w) => Array.from(w.dataSync()));
        expect(served).toEqual(
          Array.from(
            new Float32Array(new Uint8Array(Buffer.from(model.weightData, 'base64')).buffer),
          ),
        );
        const out = loaded.predict(tf.zeros([1, FEATURES.length])) as tf.Tensor;
        const [probability] = Array.from(out.dataSync());
        out.dispose();
        expect(probability).toBeGreaterThan(0);
        expect(probability).toBeLessThan(1);
      } finally {
        loaded.dispose();
      }
    });
  });
}
