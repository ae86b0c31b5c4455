// The round closer and the update intake at service level, over the real database and either
// ledger (test/round-closing.e2e-spec.ts: embedded; test/fabric: Fabric), with faults injected
// at each step of closing a round: the ledger refuses, the ledger commits but its answer is
// lost, the database fails before and after the ledger write, and the process restarts in
// between. Every run resumes and completes, and the
// ledger holds each of its rounds exactly once.
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { LedgerUnavailableError } from '../../src/common/errors';
import { PolicyDecisionPoint } from '../../src/consent';
import { CoordinatorEvents, RoundEnded } from '../../src/federated/coordinator/coordinator-events';
import { Coordinator } from '../../src/federated/coordinator/coordinator.service';
import { RoundCloser } from '../../src/federated/coordinator/round-closer';
import { RunRepository } from '../../src/federated/coordinator/run-repository';
import { UpdateIntake } from '../../src/federated/coordinator/update-intake';
import { StudyEntity } from '../../src/federated/studies/study.entity';
import { StudyRegistry } from '../../src/federated/studies/study-registry';
import { LEDGER, Ledger } from '../../src/ledger';
import { Collector } from '../helpers/collector';
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import {
  manifestOf,
  registerSimulatedNode,
  signManifest,
  SimulatedNode,
  weights,
} from '../helpers/simulated-node';
import { TestApi } from '../helpers/test-api';

export function roundClosingSuite(ledgerUnderTest: LedgerUnderTest): void {
  describe(`closing rounds under faults (${ledgerUnderTest.name} ledger)`, () => {
    let api: TestApi;
    let researcher: string;
    let studyId: string;
    const nodes: SimulatedNode[] = [];
    const patients: string[] = [];

    const app = () => api.server.app;
    const ledger = () => app().get<Ledger>(LEDGER);
    const closer = () => app().get(RoundCloser);
    const repo = () => app().get(RunRepository);
    const coordinator = () => app().get(Coordinator);

    beforeAll(async () => {
      api = await ledgerUnderTest.startApi({ TRAINING_NODES: 'off' });
      researcher = await api.token('rhea', 'RESEARCHER');
      const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
        `mutation { createStudy(input: { title: "Closing", features: ["2345-7", "4548-4"],
         label: "44054006", minNodes: 2 }) { id } }`,
        {},
        researcher,
      );
      studyId = createStudy.id;
      const admin = await api.token('root', 'ADMIN');
      for (const name of ['n1', 'n2', 'n3']) {
        nodes.push(await registerSimulatedNode(api, admin, { name }));
      }
      for (let i = 0; i < 3; i++) {
        const token = await api.token(`closing-patient-${i}`, 'PATIENT');
        const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
          'mutation { registerPatient { id } }',
          {},
          token,
        );
        await api.ok(
          `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
           purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
          { s: studyId },
          token,
        );
        patients.push(registerPatient.id);
      }
    });
    afterAll(() => api?.stop());

    // Each test drives closing itself: the background sweep would race its assertions.
    beforeEach(() => closer().stopSweeping());
    afterEach(() => jest.restoreAllMocks());

    async function startRun(rounds: number): Promise<string> {
      const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
        'mutation($s: ID!, $r: Int!) { startTraining(studyId: $s, rounds: $r) { id } }',
        { s: studyId, r: rounds },
        researcher,
      );
      return startTraining.id;
    }

    /** Node k's signed update for a round (three float32 weights). */
    async function update(k: number, runId: string, round: number, value = k + 1) {
      const body = weights(value, value, value);
      const manifest = manifestOf(nodes[k].id, body, { runId, round, contributors: [patients[k]] });
      return { jws: await signManifest(manifest, nodes[k].key), body };
    }

    /** Sends updates from nodes 0 and 1 (the quorum), which triggers closing the round. */
    async function quorum(runId: string, round: number): Promise<void> {
      for (const k of [0, 1]) {
        const { jws, body } = await update(k, runId, round);
        const result = await coordinator().submit(runId, round, jws, body);
        expect(result).toMatchObject({ status: 'ACCEPTED' });
      }
    }

    async function roundStatus(runId: string, round: number) {
      const { rows } = await api.db.query<{ status: string; ledger_tx_id: string | null }>(
        'SELECT status, ledger_tx_id FROM training_rounds WHERE run_id = $1 AND round = $2',
        [runId, round],
      );
      return rows[0];
    }

    const onLedger = (runId: string) =>
      ledger().evaluate<{ round: number; txId: string; modelHash: string }[]>(
        'training',
        'ListRounds',
        [runId],
      );

    /** Makes the next RecordRound fail: before the ledger commits, or after (answer lost). */
    function failNextRecordRound(when: 'before' | 'after') {
      const real = ledger().submit.bind(ledger());
      return jest.spyOn(ledger(), 'submit').mockImplementationOnce(async (contract, fn, args) => {
        if (when === 'after') await real(contract, fn, args);
        throw new LedgerUnavailableError('The ledger is unavailable (injected).');
      });
    }

    it('retries a round whose ledger write failed, and records it once', async () => {
      const runId = await startRun(1);
      failNextRecordRound('before');
      await quorum(runId, 1);
      expect((await roundStatus(runId, 1)).status).toBe('CLOSING');
      expect(await onLedger(runId)).toEqual([]);
      await closer().close(runId, 1);
      expect(await coordinator().get(runId)).toMatchObject({ status: 'COMPLETED' });
      const recorded = await onLedger(runId);
      expect(recorded).toHaveLength(1);
      expect((await roundStatus(runId, 1)).ledger_tx_id).toBe(recorded[0].txId);
    });

    it('adopts a round the ledger committed although its answer was lost', async () => {
      const runId = await startRun(1);
      failNextRecordRound('after');
      await quorum(runId, 1);
      // Before, this round was retried forever: the chaincode refuses a second RecordRound.
      const recorded = await onLedger(runId);
      expect(recorded).toHaveLength(1);
      expect(await roundStatus(runId, 1)).toEqual({
        status: 'CLOSED',
        ledger_tx_id: recorded[0].txId,
      });
      expect((await coordinator().get(runId))!.modelHash).toBe(recorded[0].modelHash);
    });

    it('leaves a round open when the database fails before the ledger write', async () => {
      const runId = await startRun(1);
      jest.spyOn(repo(), 'markClosing').mockRejectedValueOnce(new Error('connection lost'));
      await quorum(runId, 1);
      expect((await roundStatus(runId, 1)).status).toBe('OPEN');
      expect(await onLedger(runId)).toEqual([]);
      await closer().close(runId, 1);
      expect((await roundStatus(runId, 1)).status).toBe('CLOSED');
      expect(await onLedger(runId)).toHaveLength(1);
    });

    it('finishes after a restart when the database failed after the ledger write', async () => {
      const runId = await startRun(2);
      jest.spyOn(repo(), 'markClosed').mockRejectedValueOnce(new Error('connection lost'));
      await quorum(runId, 1);
      expect((await roundStatus(runId, 1)).status).toBe('CLOSING');
      expect(await onLedger(runId)).toHaveLength(1);
      // As if the process had died here: nothing in memory survives, the sweep resumes.
      await api.restart();
      const ended = new Collector<RoundEnded>();
      app().get(CoordinatorEvents).on('round', ended.push);
      if ((await roundStatus(runId, 1)).status !== 'CLOSED') {
        await ended.until((e) => e.some((r) => r.runId === runId && r.round === 1));
      }
      expect(await roundStatus(runId, 1)).toMatchObject({ status: 'CLOSED' });
      closer().stopSweeping();
      await quorum(runId, 2);
      expect(await coordinator().get(runId)).toMatchObject({
        status: 'COMPLETED',
        currentRound: 2,
      });
      const recorded = await onLedger(runId);
      expect(recorded.map((r) => r.round)).toEqual([1, 2]);
      expect((await coordinator().get(runId))!.provenanceTxIds).toEqual(
        recorded.map((r) => r.txId),
      );
    });

    it('fails a round clearly when the ledger holds another model for it', async () => {
      const runId = await startRun(1);
      jest.spyOn(repo(), 'markClosed').mockRejectedValueOnce(new Error('connection lost'));
      await quorum(runId, 1);
      // Someone changed the stored record after it went on the ledger: it cannot be adopted.
      await api.db.query(
        `UPDATE training_rounds SET round_record = jsonb_set(round_record, '{modelHash}',
         to_jsonb(repeat('0', 64))) WHERE run_id = $1`,
        [runId],
      );
      await closer().close(runId, 1);
      expect(await coordinator().get(runId)).toMatchObject({
        status: 'FAILED',
        failure: 'the ledger already records another model for round 1',
      });
    });

    it('sweeps each round on its own: one that keeps failing holds up no other', async () => {
      const stuck = await startRun(1);
      const fine = await startRun(1);
      const real = ledger().submit.bind(ledger());
      jest.spyOn(ledger(), 'submit').mockImplementation(async (contract, fn, args) => {
        if (fn === 'RecordRound' && args[0].includes(stuck)) {
          throw new LedgerUnavailableError('The ledger is unavailable (injected).');
        }
        return real(contract, fn, args);
      });
      // Updates taken in without closing, so that both rounds are quorate but still open.
      for (const runId of [stuck, fine]) {
        for (const k of [0, 1]) {
          const { jws, body } = await update(k, runId, 1);
          await app().get(UpdateIntake).receive(runId, 1, jws, body);
        }
      }
      expect((await roundStatus(stuck, 1)).status).toBe('OPEN');
      expect((await roundStatus(fine, 1)).status).toBe('OPEN');
      // Quorate open rounds are swept, the stuck one first; its failure stops nothing.
      await closer().sweep();
      expect((await roundStatus(stuck, 1)).status).toBe('CLOSING');
      expect((await roundStatus(fine, 1)).status).toBe('CLOSED');
      // Backoff: an immediate second sweep does not hammer the failing round.
      const calls = jest.mocked(ledger().submit).mock.calls.length;
      await closer().sweep();
      expect(jest.mocked(ledger().submit).mock.calls.length).toBe(calls);
      jest.restoreAllMocks();
      await closer().close(stuck, 1);
      expect(await coordinator().get(stuck)).toMatchObject({ status: 'COMPLETED' });
      expect(await onLedger(stuck)).toHaveLength(1);
    });

    it('fails a round whose updates cannot be aggregated, saying why, rather than retry it forever', async () => {
      const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
        `mutation { createStudy(input: { title: "Unaggregatable", features: ["2345-7", "4548-4"],
         label: "44054006", minNodes: 2 }) { id } }`,
        {},
        researcher,
      );
      // Settings from before createStudy bounded them: noise no accountant can put a number on.
      // Such a study was registered on the ledger as it was stored (a row merely changed here
      // is withheld): one is made so here, under an id of its own.
      const studyId = randomUUID();
      await api.db.query(
        `INSERT INTO studies (id, title, owner_id, model, features, label, strategy, local_epochs,
           learning_rate, batch_size, min_nodes, round_deadline_ms, clip_norm, noise_multiplier,
           created_at)
         SELECT $1, title, owner_id, model, features, label, strategy, local_epochs,
           learning_rate, batch_size, min_nodes, round_deadline_ms, 1, 1e-300, created_at
         FROM studies WHERE id = $2`,
        [studyId, createStudy.id],
      );
      await api.server.app
        .get(StudyRegistry)
        .register(
          await api.server.app
            .get(DataSource)
            .getRepository(StudyEntity)
            .findOneByOrFail({ id: studyId }),
        );
      for (let i = 0; i < 2; i++) {
        await api.ok(
          `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
           purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
          { s: studyId },
          await api.token(`closing-patient-${i}`, 'PATIENT'),
        );
      }
      const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
        'mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }',
        { s: studyId },
        researcher,
      );
      const runId = startTraining.id;
      await quorum(runId, 1);
      expect(await roundStatus(runId, 1)).toMatchObject({ status: 'FAILED' });
      const { rows } = await api.db.query(
        'SELECT status, failure FROM training_runs WHERE id = $1',
        [runId],
      );
      expect(rows[0].status).toBe('FAILED');
      expect(rows[0].failure).toMatch(/^round 1 could not be aggregated: /);
      expect(await onLedger(runId)).toHaveLength(0);
    });

    describe('intake', () => {
      it('accepts one of two identical updates sent at once, and rejects the other as a duplicate', async () => {
        const runId = await startRun(1);
        const { jws, body } = await update(2, runId, 1);
        const results = await Promise.all([
          coordinator().submit(runId, 1, jws, body),
          coordinator().submit(runId, 1, jws, body),
        ]);
        expect(results.map((r) => r.status).sort()).toEqual(['ACCEPTED', 'REJECTED']);
        expect(results.find((r) => r.status === 'REJECTED')!.reason).toMatch(/^duplicate/);
        await api.ok(
          'mutation($id: ID!) { cancelTraining(runId: $id) { id } }',
          { id: runId },
          researcher,
        );
      });

      it('stores an update only once what it waits for is done, and nothing if that fails', async () => {
        const runId = await startRun(1);
        const stored = async () =>
          (
            await api.db.query('SELECT status FROM model_updates WHERE run_id = $1', [runId])
          ).rows.map((r) => r.status as string);
        // An in-process node's update waits for the logging of its examples' use.
        let logged!: () => void;
        const logging = new Promise<void>((resolve) => (logged = resolve));
        // Checked meanwhile: its contributors' consent is answered before the log is done.
        const pdp = app().get(PolicyDecisionPoint);
        const answer = pdp.trainingGrants.bind(pdp);
        const answered = new Promise<void>((resolve) =>
          jest.spyOn(pdp, 'trainingGrants').mockImplementation(async (...args) => {
            const grants = await answer(...args);
            resolve();
            return grants;
          }),
        );
        const { jws, body } = await update(2, runId, 1);
        const submitted = coordinator().submit(runId, 1, jws, body, { after: logging });
        await answered;
        expect(await stored()).toEqual([]);
        logged();
        expect(await submitted).toMatchObject({ status: 'ACCEPTED' });
        expect(await stored()).toEqual(['ACCEPTED']);

        // The logging fails: the submission fails, and nothing is stored, not even a rejection.
        const failing = Promise.reject(new Error('the access log is unavailable'));
        const again = await update(1, runId, 1);
        await expect(
          coordinator().submit(runId, 1, again.jws, again.body, { after: failing }),
        ).rejects.toThrow('the access log is unavailable');
        // One that would be rejected (its body is not the one it signed) records no rejection.
        const mismatched = await update(0, runId, 1);
        await expect(
          coordinator().submit(runId, 1, mismatched.jws, weights(9, 9, 9), { after: failing }),
        ).rejects.toThrow('the access log is unavailable');
        expect(await stored()).toEqual(['ACCEPTED']);
        await api.ok(
          'mutation($id: ID!) { cancelTraining(runId: $id) { id } }',
          { id: runId },
          researcher,
        );
      });

      it('refuses an update stored while its round is being closed: none is accepted but left out', async () => {
        const runId = await startRun(1);
        const first = await update(0, runId, 1);
        expect(await coordinator().submit(runId, 1, first.jws, first.body)).toMatchObject({
          status: 'ACCEPTED',
        });
        // The closing that the quorum's update starts is held at its consent check.
        const pdp = app().get(PolicyDecisionPoint);
        const answer = pdp.trainingScopes.bind(pdp);
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let closing!: () => void;
        const held = new Promise<void>((resolve) => (closing = resolve));
        jest.spyOn(pdp, 'trainingScopes').mockImplementation(async (study, ids, node) => {
          if (node === 'coordinator') {
            closing();
            await released;
          }
          return answer(study, ids, node);
        });
        const second = await update(1, runId, 1);
        const quorum = coordinator().submit(runId, 1, second.jws, second.body);
        await held;
        // A third node's update arrives meanwhile: storing it waits for the round's row.
        const third = await update(2, runId, 1);
        const late = coordinator().submit(runId, 1, third.jws, third.body);
        for (let asked = 1; ; asked++) {
          if (asked > 5000) throw new Error('the late update never waited for the closing round');
          const { rows } = await api.db.query(
            `SELECT 1 FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT 1 FROM training_rounds%FOR UPDATE'`,
          );
          if (rows.length) break;
        }
        release();
        expect(await quorum).toMatchObject({ status: 'ACCEPTED' });
        expect(await late).toMatchObject({ status: 'REJECTED', reason: 'round is not open' });
        // Every accepted update is one the round folded, as the ledger records it.
        const { rows } = await api.db.query(
          `SELECT update_sha256 FROM model_updates WHERE run_id = $1 AND status = 'ACCEPTED'`,
          [runId],
        );
        const recorded = await ledger().evaluate<{ updateHashes: string[] }>(
          'training',
          'GetRound',
          [runId, '1'],
        );
        expect(rows.map((r) => r.update_sha256).sort()).toEqual([...recorded.updateHashes].sort());
        expect(rows).toHaveLength(2);
      });

      it('counts contributors without consent and never names them', async () => {
        const runId = await startRun(1);
        const body = weights(1, 1, 1);
        const stranger = '7f1e0c7a-1111-4c1b-9a55-0a4f3c3e9d21';
        const manifest = manifestOf(nodes[0].id, body, {
          runId,
          round: 1,
          contributors: [patients[0], stranger],
        });
        const jws = await signManifest(manifest, nodes[0].key);
        const result = await coordinator().submit(runId, 1, jws, body);
        expect(result).toMatchObject({
          status: 'REJECTED',
          reason: '1 of 2 contributors hold no active TRAIN consent for this study',
        });
        await api.ok(
          'mutation($id: ID!) { cancelTraining(runId: $id) { id } }',
          { id: runId },
          researcher,
        );
      });
    });
  });
}
