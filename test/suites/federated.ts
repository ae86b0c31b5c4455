// The coordinator's protocol end to end, on either ledger (test/federated.e2e-spec.ts:
// embedded; test/fabric: Fabric), with nodes simulated by signing real manifests
// (the TensorFlow.js training nodes are tested on their own): rounds close on their quorum,
// every bad update is rejected with its reason while the round goes on, consent is checked
// again at aggregation, provenance lands on the ledger, and a restarted API resumes the run.
import { randomUUID } from 'node:crypto';
import { CompactSign, generateKeyPair } from 'jose';
import { Coordinator } from '../../src/federated/coordinator/coordinator.service';
import { RemoteNode } from '../../src/federated/node/remote-node';
import { generateCohort, toFhir } from '../../src/federated/synthetic/cohort';
import { LEDGER, Ledger } from '../../src/ledger';
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import {
  manifestOf,
  NodeKey,
  postUpdate,
  registerSimulatedNode,
  signManifest,
  SimulatedNode,
  weights,
} from '../helpers/simulated-node';
import { codes, TestApi } from '../helpers/test-api';

const FEATURES = ['2345-7', '4548-4'];
/** LOGISTIC over two features: two kernel weights and a bias. */
const PARAMS = FEATURES.length + 1;

type Node = Pick<SimulatedNode, 'id' | 'key' | 'token'>;

const RUN_FIELDS = `id studyId status rounds currentRound modelHash provenanceTxIds failure
  metrics { round loss accuracy auc numContributors numUpdates epsilon }
  updates { id nodeId round status reason numExamples }`;

export function federatedSuite(ledger: LedgerUnderTest): void {
  describe(`federated training, coordinated (${ledger.name} ledger)`, () => {
    let api: TestApi;
    let researcher: string;
    let studyId: string;
    let nodes: Node[];
    const patients: { token: string; id: string; grantId?: string }[] = [];
    /** The API's own organisation, its nodes' and clinicians': org1 embedded, Org1MSP on Fabric. */
    const home = () => api.config.orgId;

    beforeAll(async () => {
      // Nodes are simulated here; the in-process ones have their own suite.
      api = await ledger.startApi({ TRAINING_NODES: 'off' });
      researcher = await api.token('rosa', 'RESEARCHER');
      studyId = await createStudy('Diabetes', 'minNodes: 2');
      nodes = [];
      const admin = await api.token('root', 'ADMIN');
      for (const name of ['node-a', 'node-b', 'node-c']) {
        nodes.push(await registerSimulatedNode(api, admin, { name }));
      }
      for (let i = 0; i < 4; i++) {
        const token = await api.token(`fl-patient-${i}`, 'PATIENT');
        const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
          'mutation { registerPatient { id } }',
          {},
          token,
        );
        const patient: (typeof patients)[number] = { token, id: registerPatient.id };
        if (i < 3) patient.grantId = await joinStudy(token, studyId);
        patients.push(patient);
      }
    });

    /** A study of FEATURES predicting type 2 diabetes; `settings` is more CreateStudyInput. */
    async function createStudy(title: string, settings = ''): Promise<string> {
      const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
        `mutation($f: [String!]!, $t: String!) { createStudy(input: { title: $t, features: $f,
         label: "44054006" ${settings} }) { id } }`,
        { f: FEATURES, t: title },
        researcher,
      );
      return createStudy.id;
    }

    /** The patient's TRAIN grant to the study; returns the grant id. */
    async function joinStudy(patientToken: string, study: string): Promise<string> {
      const { grantConsent } = await api.ok<{ grantConsent: { id: string } }>(
        `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
         purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
        { s: study },
        patientToken,
      );
      return grantConsent.id;
    }

    async function startRun(study: string, rounds: number): Promise<string> {
      const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
        'mutation($s: ID!, $r: Int!) { startTraining(studyId: $s, rounds: $r) { id } }',
        { s: study, r: rounds },
        researcher,
      );
      return startTraining.id;
    }

    afterAll(() => api?.stop());

    /**
     * Node `node`'s update of `body` for a round: its manifest (contributor patient 0, 10
     * examples, metrics) with `manifest` overriding, signed by the node or by `opts.key`, sent
     * with the node's token or `opts.token`.
     */
    async function post(
      node: Node,
      runId: string,
      round: number,
      body: Buffer,
      manifest: Partial<Record<string, unknown>> = {},
      opts: { key?: NodeKey; token?: string } = {},
    ) {
      const full = manifestOf(node.id, body, {
        runId,
        round,
        contributors: [patients[0].id],
        metrics: { loss: 0.5, accuracy: 0.8, auc: 0.85 },
        ...manifest,
      });
      const jws = await signManifest(full, opts.key ?? node.key);
      return postUpdate(api, { runId, round, body, jws, token: opts.token ?? node.token });
    }

    const run = async (id: string) =>
      (
        await api.ok<{
          trainingRun: Record<string, unknown> & { updates: { reason: string | null }[] };
        }>(`query($id: ID!) { trainingRun(id: $id) { ${RUN_FIELDS} } }`, { id }, researcher)
      ).trainingRun;

    it('runs rounds to completion, aggregating accepted updates and recording provenance', async () => {
      const runId = await startRun(studyId, 2);
      const model = await fetch(`${api.url}/fl/runs/${runId}/rounds/1/model`, {
        headers: { authorization: `Bearer ${nodes[0].token}` },
      });
      expect(model.status).toBe(200);
      expect(model.headers.get('content-type')).toBe('application/octet-stream');
      expect((await model.arrayBuffer()).byteLength).toBe(4 * PARAMS);

      expect((await post(nodes[0], runId, 1, weights(1, 2, 3))).body.status).toBe('ACCEPTED');
      expect((await run(runId)).currentRound).toBe(1);
      expect(
        (
          await post(nodes[1], runId, 1, weights(4, 5, 6), {
            contributors: [patients[1].id, patients[2].id],
          })
        ).body.status,
      ).toBe('ACCEPTED');

      // Quorum reached: FedAvg weighted by examples (one per patient) → (1·1 + 4·2)/3 = 3, …
      const afterOne = await run(runId);
      expect(afterOne).toMatchObject({ status: 'RUNNING', currentRound: 2 });
      const global = new Float32Array(
        await (
          await fetch(`${api.url}/fl/runs/${runId}/rounds/2/model`, {
            headers: { authorization: `Bearer ${nodes[0].token}` },
          })
        ).arrayBuffer(),
      );
      expect([...global]).toEqual([3, 4, 5]);
      const onLedger = await api.server.app
        .get<Ledger>(LEDGER)
        .evaluate<{ modelHash: string; numContributors: number; updateHashes: string[] }>(
          'training',
          'GetRound',
          [runId, '1'],
        );
      expect(onLedger.modelHash).toBe(afterOne.modelHash);
      expect(onLedger.numContributors).toBe(3);
      expect(onLedger.updateHashes).toHaveLength(2);

      await post(nodes[0], runId, 2, weights(1, 1, 1));
      // A node's metrics out of their ranges (an AUC of 1e300, an accuracy of 42, a loss that
      // would overflow the mean) are dropped: the round reports the others'.
      await post(nodes[2], runId, 2, weights(3, 3, 3), {
        contributors: [patients[2].id],
        metrics: { loss: 1e308, accuracy: 42, auc: 1e300 },
      });
      const done = await run(runId);
      expect(done).toMatchObject({ status: 'COMPLETED', currentRound: 2 });
      // A round past the run's last has no model of its own (the final one is the run's).
      const past = await fetch(`${api.url}/fl/runs/${runId}/rounds/3/model`, {
        headers: { authorization: `Bearer ${nodes[0].token}` },
      });
      expect(past.status).toBe(404);
      expect(done.provenanceTxIds).toHaveLength(2);
      expect(done.metrics).toEqual([
        {
          round: 1,
          loss: 0.5,
          accuracy: expect.closeTo(0.8, 12),
          auc: 0.85,
          numContributors: 3,
          numUpdates: 2,
          epsilon: null,
        },
        {
          round: 2,
          loss: 0.5,
          accuracy: 0.8,
          auc: 0.85,
          numContributors: 2,
          numUpdates: 2,
          epsilon: null,
        },
      ]);
      const study = await api.ok<{ study: { runs: { id: string }[] } }>(
        'query($id: ID!) { study(id: $id) { runs { id } } }',
        { id: studyId },
        researcher,
      );
      expect(study.study.runs.map((r) => r.id)).toContain(runId);
      expect(
        codes(
          await api.gql(
            'mutation($r: ID!) { cancelTraining(runId: $r) { id } }',
            { r: runId },
            researcher,
          ),
        ),
      ).toEqual(['CONFLICT']);
    });

    it('rejects every bad update with its reason, and the round goes on', async () => {
      const runId = await startRun(studyId, 1);
      const good = weights(0.1, 0.2, 0.3);
      const { privateKey: stranger } = await generateKeyPair('ES256');
      const nobody = '00000000-0000-4000-8000-000000000000';
      const unregistered: Node = {
        ...nodes[0],
        id: nobody,
        token: await api.token(nobody, 'NODE', home()),
      };
      const nan = weights(0.1, Number.NaN, 0.3);
      const cases: [
        string,
        Promise<{ status: number; body: { status: string; reason: string | null } }>,
      ][] = [
        [
          'manifest signature does not verify',
          post(nodes[0], runId, 1, good, {}, { key: stranger }),
        ],
        ['manifest names another run or round', post(nodes[0], runId, 1, good, { round: 2 })],
        [
          'body does not match its hash',
          post(nodes[0], runId, 1, good, { updateSha256: 'a'.repeat(64) }),
        ],
        ['wrong shape', post(nodes[0], runId, 1, weights(1, 2))],
        ['non-finite values', post(nodes[0], runId, 1, nan)],
        // Finite, but only there to swamp (or overflow) the average.
        ['weights beyond ±1e+6', post(nodes[0], runId, 1, weights(3.4e38, 0.2, -2e6))],
        // More examples than the database can count: refused as malformed, not a server error.
        ['manifest is malformed', post(nodes[0], runId, 1, good, { numExamples: 2 ** 53 - 1 })],
        // One example per patient: more would outweigh every other node's update.
        [
          'claims 2147483647 examples from 1 contributors',
          post(nodes[0], runId, 1, good, { numExamples: 2 ** 31 - 1 }),
        ],
        [
          'lists a contributor more than once',
          post(nodes[0], runId, 1, good, {
            contributors: [patients[0].id, patients[0].id],
            numExamples: 2,
          }),
        ],
        // Signed by node 0, sent with node 1's token: the update is node 1's, and refused.
        [
          'manifest names another node than the one sending it',
          post(nodes[0], runId, 1, good, {}, { token: nodes[1].token }),
        ],
        [
          'hold no active TRAIN consent',
          post(nodes[0], runId, 1, good, { contributors: [patients[3].id] }),
        ],
      ];
      for (const [reason, pending] of cases) {
        const { status, body } = await pending;
        expect(status).toBe(422);
        expect(body).toMatchObject({ status: 'REJECTED' });
        expect(body.reason).toContain(reason);
      }
      // Signed by the node, but not a manifest at all: rejected with a reason, not a server error.
      const notJson = await fetch(`${api.url}/fl/runs/${runId}/rounds/1/updates`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          authorization: `Bearer ${nodes[0].token}`,
          'x-custodia-manifest': await new CompactSign(
            Buffer.from(JSON.stringify({ nodeId: nodes[0].id }).slice(0, -1)),
          )
            .setProtectedHeader({ alg: 'ES256' })
            .sign(nodes[0].key),
        },
        body: good,
      });
      expect(notJson.status).toBe(422);
      expect(((await notJson.json()) as { reason: string }).reason).toMatch(/manifest is/);
      // Unsigned (alg none), claiming node 2, sent with node 0's token: refused, and recorded
      // as node 0's, never as node 2's, whose round is still its to send.
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const forged = await fetch(`${api.url}/fl/runs/${runId}/rounds/1/updates`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          authorization: `Bearer ${nodes[0].token}`,
          'x-custodia-manifest': `${b64({ alg: 'none' })}.${b64({ nodeId: nodes[2].id })}.`,
        },
        body: good,
      });
      expect(forged.status).toBe(422);
      expect((await post(nodes[0], runId, 1, good)).body.status).toBe('ACCEPTED');
      const dup = await post(nodes[0], runId, 1, good);
      expect(dup.body.reason).toContain('duplicate');
      const state = await run(runId);
      expect(state).toMatchObject({ status: 'RUNNING', currentRound: 1 });
      expect(state.updates.filter((u) => u.reason !== null)).toHaveLength(cases.length + 3);
      const senders = (state.updates as unknown as { nodeId: string }[]).map((u) => u.nodeId);
      expect(senders).not.toContain(nodes[2].id);
      expect(senders.filter((n) => n === nodes[1].id)).toHaveLength(1);
      const { openRounds } = await api.ok<{ openRounds: { runId: string; submitted: boolean }[] }>(
        '{ openRounds { runId submitted } }',
        {},
        nodes[2].token,
      );
      expect(openRounds.find((r) => r.runId === runId)).toMatchObject({ submitted: false });
      // A token naming no registered node: refused outright, and nothing is recorded for it.
      const unknownNode = await post(unregistered, runId, 1, good);
      expect(unknownNode.status).toBe(403);
      expect(
        ((await run(runId)).updates as unknown as { nodeId: string }[]).map((u) => u.nodeId),
      ).not.toContain(unregistered.id);
      // A node of another organisation listing this one's patient: refused, counted.
      await api.db.query(
        `INSERT INTO organizations (id, name) VALUES ('far-org', 'Far') ON CONFLICT DO NOTHING`,
      );
      const far = await registerSimulatedNode(api, await api.token('root', 'ADMIN'), {
        organizationId: 'far-org',
        name: 'far',
      });
      const farPost = await post(far, runId, 1, good);
      expect(farPost.status).toBe(422);
      expect(farPost.body.reason).toBe(
        "1 of 1 contributors are patients of another organisation than the node's",
      );
      // A round that never opened is not there to send to.
      const early = await post(nodes[0], runId, 2, good, { round: 2 });
      expect(early.status).toBe(404);
      // The round still closes once a second node reports.
      await post(nodes[1], runId, 1, good, { contributors: [patients[1].id] });
      expect((await run(runId)).status).toBe('COMPLETED');
    });

    it('drops an update whose contributor revoked before aggregation, and rejects new ones listing them', async () => {
      const runId = await startRun(studyId, 1);
      const victim = patients[2];
      expect(
        (await post(nodes[0], runId, 1, weights(1, 1, 1), { contributors: [victim.id] })).body
          .status,
      ).toBe('ACCEPTED');
      await api.ok(
        'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
        { id: victim.grantId },
        victim.token,
      );
      const listing = await post(nodes[1], runId, 1, weights(2, 2, 2), {
        contributors: [victim.id],
      });
      // Reasons count contributors and never name one: a patient id is not the node's to see.
      expect(listing.body.reason).toBe(
        '1 of 1 contributors hold no active TRAIN consent for this study',
      );
      await post(nodes[1], runId, 1, weights(2, 2, 2), { contributors: [patients[1].id] });
      await post(nodes[2], runId, 1, weights(4, 4, 4), { contributors: [patients[0].id] });
      const state = await run(runId);
      expect(state.status).toBe('COMPLETED');
      expect(state.updates.map((u) => u.reason)).toContainEqual(
        "1 of 1 contributors' TRAIN consent ended (revoked or expired) before aggregation",
      );
      expect(JSON.stringify(state.updates)).not.toContain(victim.id);
    });

    it('drops an update whose contributor replaced, before aggregation, the grant it was taken under by a narrower one', async () => {
      const runId = await startRun(studyId, 1);
      const narrowing = patients[1];
      expect(
        (await post(nodes[0], runId, 1, weights(1, 1, 1), { contributors: [narrowing.id] })).body
          .status,
      ).toBe('ACCEPTED');
      // Still consenting to the study, but to less: the update read what the old grant allowed.
      await api.ok(
        'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
        { id: narrowing.grantId },
        narrowing.token,
      );
      const { grantConsent } = await api.ok<{ grantConsent: { id: string } }>(
        `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
           purpose: RESEARCH, actions: [TRAIN], resourceTypes: ["Observation"] }) { id } }`,
        { s: studyId },
        narrowing.token,
      );
      narrowing.grantId = grantConsent.id;
      await post(nodes[1], runId, 1, weights(2, 2, 2), { contributors: [patients[0].id] });
      const dropped = await run(runId);
      expect(dropped.status).toBe('RUNNING');
      expect(dropped.updates.map((u) => u.reason)).toContainEqual(
        "1 of 1 contributors' TRAIN consent ended (revoked or expired) before aggregation",
      );
      // Trained again under the grant that stands, it is taken.
      await post(nodes[0], runId, 1, weights(1, 1, 1), { contributors: [narrowing.id] });
      expect((await run(runId)).status).toBe('COMPLETED');
    });

    it('keeps runs, updates and their reasons with researchers, administrators and nodes', async () => {
      const runId = await startRun(studyId, 1);
      await post(nodes[0], runId, 1, weights(1, 2)); // rejected: wrong shape
      await post(nodes[1], runId, 1, weights(1, 1, 1), { contributors: [patients[1].id] });
      const patient = patients[0].token;
      const clinician = await api.token('dr-who', 'CLINICIAN', home());
      for (const token of [patient, clinician]) {
        // The catalogue is everyone's; what was trained on it is not.
        const catalogue = await api.ok<{ study: { id: string } }>(
          'query($id: ID!) { study(id: $id) { id title } }',
          { id: studyId },
          token,
        );
        expect(catalogue.study.id).toBe(studyId);
        const runs = await api.gql(
          'query($id: ID!) { study(id: $id) { runs { id } } }',
          {
            id: studyId,
          },
          token,
        );
        expect(codes(runs)).toEqual(['FORBIDDEN']);
        const listed = await api.gql('{ studies { id runs { updates { reason } } } }', {}, token);
        expect(codes(listed)).toEqual(['FORBIDDEN']);
        expect(JSON.stringify(listed.data ?? null)).not.toContain('reason');
        const direct = await api.gql(
          `query($id: ID!) { trainingRun(id: $id) { id } }`,
          { id: runId },
          token,
        );
        expect(codes(direct)).toEqual(['FORBIDDEN']);
      }
      // A node sees its own updates; the researcher sees every node's.
      const seenBy = async (token: string) =>
        (
          await api.ok<{ trainingRun: { updates: { nodeId: string }[] } }>(
            'query($id: ID!) { trainingRun(id: $id) { updates { nodeId status reason } } }',
            { id: runId },
            token,
          )
        ).trainingRun.updates.map((u) => u.nodeId);
      expect(new Set(await seenBy(nodes[0].token))).toEqual(new Set([nodes[0].id]));
      expect(new Set(await seenBy(nodes[1].token))).toEqual(new Set([nodes[1].id]));
      expect(new Set(await seenBy(researcher))).toEqual(new Set([nodes[0].id, nodes[1].id]));
      // A NODE token that names no registered node reads no run, round or model.
      const ghost = await api.token(randomUUID(), 'NODE', home());
      for (const query of [
        `query($id: ID!) { trainingRun(id: $id) { id metrics { auc } } }`,
        '{ openRounds { runId round } }',
      ]) {
        const refused = await api.gql(query, { id: runId }, ghost);
        expect(codes(refused)).toEqual(['FORBIDDEN']);
      }
      for (const path of [`/fl/runs/${runId}/rounds/1/model`, `/fl/runs/${runId}/model`]) {
        const res = await fetch(`${api.url}${path}`, {
          headers: { authorization: `Bearer ${ghost}` },
        });
        expect(res.status).toBe(403);
      }
      // Rounds count from 1, here as at the /fl routes.
      for (const round of [0, -1]) {
        const none = await api.gql(
          'query($id: ID!, $r: Int) { trainingRun(id: $id) { updates(round: $r) { nodeId } } }',
          { id: runId, r: round },
          researcher,
        );
        expect(codes(none)).toEqual(['BAD_USER_INPUT']);
      }
      const ownRuns = await api.ok<{ study: { runs: { id: string }[] } }>(
        'query($id: ID!) { study(id: $id) { runs { id } } }',
        { id: studyId },
        researcher,
      );
      expect(ownRuns.study.runs.map((r) => r.id)).toContain(runId);
      // Left open, the round would collect the next tests' updates.
      await api.ok(
        'mutation($id: ID!) { cancelTraining(runId: $id) { id } }',
        { id: runId },
        researcher,
      );
    });

    it('resumes a run after the API restarts', async () => {
      const runId = await startRun(studyId, 1);
      expect((await post(nodes[0], runId, 1, weights(1, 1, 1))).body.status).toBe('ACCEPTED');
      await api.restart();
      nodes = await Promise.all(
        nodes.map(async (n) => ({ ...n, token: await api.token(n.id, 'NODE', home()) })),
      );
      researcher = await api.token('rosa', 'RESEARCHER');
      expect(
        (await post(nodes[1], runId, 1, weights(3, 3, 3), { contributors: [patients[1].id] })).body
          .status,
      ).toBe('ACCEPTED');
      expect(await run(runId)).toMatchObject({ status: 'COMPLETED' });
    });

    it('fails a round whose deadline passes short of its quorum, clearly', async () => {
      const quick = await createStudy('Quick', 'minNodes: 2, roundDeadlineMs: 1000');
      const coordinator = api.server.app.get(Coordinator);
      const runId = await startRun(quick, 3);
      const failed = new Promise<void>((resolve) =>
        coordinator.events.on('round', (e: { runId: string; status: string }) => {
          if (e.runId === runId && e.status === 'FAILED') resolve();
        }),
      );
      await failed;
      expect(await run(runId)).toMatchObject({
        status: 'FAILED',
        failure: 'round 1 closed at its deadline with 0 of the 2 updates needed',
      });
    });

    it('adds calibrated noise under differential privacy and reports the privacy spent', async () => {
      const dpStudy = await createStudy('DP', 'minNodes: 2, clipNorm: 1, noiseMultiplier: 1.1');
      await joinStudy(patients[0].token, dpStudy);
      await joinStudy(patients[1].token, dpStudy);
      const dpRun = await startRun(dpStudy, 1);
      await post(nodes[0], dpRun, 1, weights(5, 5, 5));
      await post(nodes[1], dpRun, 1, weights(-5, -5, -5), { contributors: [patients[1].id] });
      const state = await run(dpRun);
      expect(state.status).toBe('COMPLETED');
      const [metrics] = state.metrics as { epsilon: number }[];
      expect(metrics.epsilon).toBeGreaterThan(0);
      const recorded = await api.server.app
        .get<Ledger>(LEDGER)
        .evaluate<{ epsilon: number; delta: number }>('training', 'GetRound', [dpRun, '1']);
      expect(recorded).toMatchObject({ epsilon: metrics.epsilon, delta: 1e-5 });
    });

    it('counts a patient once in a round, whichever nodes of their organisation send them', async () => {
      const runId = await startRun(studyId, 1);
      expect((await post(nodes[0], runId, 1, weights(1, 1, 1))).body.status).toBe('ACCEPTED');
      const twice = await post(nodes[1], runId, 1, weights(2, 2, 2), {
        contributors: [patients[1].id, patients[0].id],
      });
      expect(twice.body).toMatchObject({
        status: 'REJECTED',
        reason:
          "1 of 2 contributors are already counted in this round by another node's update (a patient weighs once)",
      });
      expect(JSON.stringify(twice.body)).not.toContain(patients[0].id);
      // Sent again without the patient counted already, the update is taken.
      const once = await post(nodes[1], runId, 1, weights(2, 2, 2), {
        contributors: [patients[1].id],
      });
      expect(once.body.status).toBe('ACCEPTED');
      const { rows } = await api.db.query(
        `SELECT c, count(*)::int AS n FROM model_updates, unnest(contributors) AS c
         WHERE run_id = $1 AND status = 'ACCEPTED' GROUP BY c`,
        [runId],
      );
      expect(rows.every((r: { n: number }) => r.n === 1)).toBe(true);
      expect((await run(runId)).status).toBe('COMPLETED');
    });

    it("lets another organisation's node train remotely on its own patients", async () => {
      // Two patients of this instance with real observations, both consenting to the study.
      const cohort = generateCohort({ patients: 2, sites: 1, seed: 3 });
      for (const [i, p] of patients.slice(0, 2).entries()) {
        for (const resource of toFhir(cohort.patients[i], p.id)) {
          await api.ok(
            'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }',
            { r: resource },
            p.token,
          );
        }
      }
      const { id: nodeId, privateJwk } = await registerSimulatedNode(
        api,
        await api.token('root', 'ADMIN'),
        { name: 'remote' },
      );
      const soloStudy = await createStudy('Solo', 'minNodes: 1');
      for (const p of patients.slice(0, 2)) {
        await joinStudy(p.token, soloStudy);
      }
      const soloRun = await startRun(soloStudy, 1);
      const node = new RemoteNode(api.server.app, {
        coordinator: api.url,
        token: await api.token(nodeId, 'NODE', home()),
        privateJwk,
      });
      const polled = await node.pollOnce();
      expect(polled.submitted).toEqual([
        { runId: soloRun, round: 1, status: 'ACCEPTED', reason: null },
      ]);
      expect(await run(soloRun)).toMatchObject({ status: 'COMPLETED' });
      // Nothing left to answer.
      expect((await node.pollOnce()).submitted).toEqual([]);
    });

    it('leaves a patient out of training from the round after they revoke', async () => {
      // patients[0] and patients[1] have records (see the test above); both join this study.
      const study = await createStudy('Three', 'minNodes: 1');
      const grants: string[] = [];
      for (const p of patients.slice(0, 2)) {
        grants.push(await joinStudy(p.token, study));
      }
      const runId = await startRun(study, 3);
      const { id: nodeId, privateJwk } = await registerSimulatedNode(
        api,
        await api.token('root', 'ADMIN'),
        { name: 'three' },
      );
      const node = new RemoteNode(api.server.app, {
        coordinator: api.url,
        token: await api.token(nodeId, 'NODE', home()),
        privateJwk,
      });
      const contributorsOf = async (round: number) =>
        (
          await api.db.query(
            `SELECT contributors FROM model_updates WHERE run_id = $1 AND round = $2 AND status = 'ACCEPTED'`,
            [runId, round],
          )
        ).rows.flatMap((r) => r.contributors as string[]);

      await node.pollOnce();
      await node.pollOnce();
      await api.ok(
        'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
        { id: grants[1] },
        patients[1].token,
      );
      await node.pollOnce();

      expect(await contributorsOf(1)).toContain(patients[1].id);
      expect(await contributorsOf(2)).toContain(patients[1].id);
      expect(await contributorsOf(3)).toEqual(expect.not.arrayContaining([patients[1].id]));
      expect(await contributorsOf(3)).toContain(patients[0].id);
      expect(await run(runId)).toMatchObject({ status: 'COMPLETED' });
    });
    it("sends each open round with its strategy's settings for local training", async () => {
      const prox = await createStudy('Prox', 'strategy: FEDPROX');
      const proxRun = await startRun(prox, 1);
      const { openRounds } = await api.ok<{
        openRounds: { runId: string; round: number; submitted: boolean; clientConfig: unknown }[];
      }>('{ openRounds { runId round submitted clientConfig } }', {}, nodes[0].token);
      expect(openRounds.find((r) => r.runId === proxRun)).toEqual({
        runId: proxRun,
        round: 1,
        submitted: false,
        clientConfig: { mu: 0.01 },
      });
      await api.ok(
        'mutation($r: ID!) { cancelTraining(runId: $r) { id } }',
        { r: proxRun },
        researcher,
      );
    });

    it('shows researchers models and metrics, never records', async () => {
      const res = await api.gql(
        'query($p: ID!) { records(patientId: $p) { items { id } } }',
        { p: patients[0].id },
        researcher,
      );
      expect(codes(res)).toEqual(['FORBIDDEN']);
      const patientView = await api.gql(
        'query { trainingRun(id: "x") { id } }',
        {},
        patients[0].token,
      );
      expect(codes(patientView)).toEqual(['FORBIDDEN']);
    });
  });
}
