// A training node's examples are built once per study and rebuilt only for patients whose
// records changed; consent and erasure still take effect from the next round, every round
// logs each use, and the cached examples always equal a fresh read of the database.
import { randomUUID } from 'node:crypto';
import { AccessLog } from '../src/audit';
import { ConsentService } from '../src/consent';
import { PolicyDecisionPoint } from '../src/consent';
import { TrainingExamples } from '../src/federated/node/node-work';
import { seedCohort, SeedSummary } from '../src/federated/synthetic/seed';
import { RecordsService } from '../src/records';
import { observation } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];
const NODE = 'node-under-test';
const ROUND = { runId: randomUUID(), round: 3 };

describe('training examples, cached between rounds', () => {
  let api: TestApi;
  let summary: SeedSummary;
  let study: { id: string; features: string[]; label: string };
  const grants = new Map<string, string>();

  const app = () => api.server.app;
  const records = () => app().get(RecordsService);
  const fresh = () => new TrainingExamples(app().get(PolicyDecisionPoint), records());
  const site = () => summary.patients[0].organizationId;
  const ofSite = () => summary.patients.filter((p) => p.organizationId === site());
  /** The node's examples once their use is logged (as a node has them when it submits). */
  const complete = async (source: TrainingExamples) => {
    const { examples, logged } = await source.select(site(), study, NODE, ROUND);
    await logged;
    return examples;
  };
  const uncached = () => {
    const source = fresh();
    source.cache = false;
    return complete(source);
  };
  const trainEvents = async (patientId: string) =>
    Number(
      (
        await api.db.query(
          `SELECT count(*) FROM access_events WHERE patient_id = $1 AND action = 'TRAIN'`,
          [patientId],
        )
      ).rows[0].count,
    );

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'off' });
    summary = await seedCohort(app(), { patients: 36, sites: 2, seed: 5, alpha: 0.5 });
    const researcher = await api.token('ex-researcher', 'RESEARCHER');
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation($f: [String!]!) { createStudy(input: { title: "Cache", features: $f,
         label: "44054006" }) { id } }`,
      { f: FEATURES },
      researcher,
    );
    study = { id: createStudy.id, features: FEATURES, label: '44054006' };
    const consents = app().get(ConsentService);
    for (const p of summary.patients) {
      const grant = await consents.grant(
        { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
        { granteeType: 'STUDY', granteeId: study.id, purpose: 'RESEARCH', actions: ['TRAIN'] },
      );
      grants.set(p.id, grant.id);
    }
  });
  afterAll(() => api?.stop());

  it('reads records once, rebuilds only what changed, and still logs every round', async () => {
    const source = fresh();
    const opened = jest.spyOn(records(), 'openForTraining');
    const first = await complete(source);
    expect(first.length).toBeGreaterThan(15);
    expect(opened).toHaveBeenCalledTimes(1);
    // Only this organisation's patients, though the other site's consented to the same study.
    const mine = new Set(ofSite().map((p) => p.id));
    expect(mine.size).toBeLessThan(summary.patients.length);
    expect([...opened.mock.calls[0][0]].sort()).toEqual([...mine].sort());
    expect(first.every((e) => mine.has(e.id))).toBe(true);

    // Nothing changed: nothing is read again, the examples are the same, the use is logged.
    const [someone, amended, revoking, erasing] = ofSite();
    const logged = await trainEvents(someone.id);
    expect(await complete(source)).toEqual(first);
    expect(opened).toHaveBeenCalledTimes(1);
    expect(await trainEvents(someone.id)).toBe(logged + 1);

    // The patient reads which study, run and round used their records.
    const { accessLog } = await api.ok<{
      accessLog: { items: { action: string; actorId: string; reason: string | null }[] };
    }>(
      `query($p: ID!) { accessLog(patientId: $p) { items { action actorId reason
         trainingUse { studyId runId round } } } }`,
      { p: erasing.id },
      await api.token(erasing.userId, 'PATIENT'),
    );
    const named = `Training run ${ROUND.runId}, round 3 (study ${study.id})`;
    const use = { studyId: study.id, runId: ROUND.runId, round: 3 };
    expect(accessLog.items.filter((e) => e.action === 'TRAIN')).toEqual([
      { action: 'TRAIN', actorId: NODE, reason: named, trainingUse: use },
      { action: 'TRAIN', actorId: NODE, reason: named, trainingUse: use },
    ]);
    // Only a TRAIN event names a round.
    for (const e of accessLog.items.filter((x) => x.action !== 'TRAIN')) {
      expect(e).toMatchObject({ trainingUse: null });
    }
    // Sealed under their data key: the database holds no trace of it in clear.
    const stored = await api.db.query(
      `SELECT reason, reason_sealed FROM access_events WHERE patient_id = $1 AND action = 'TRAIN'`,
      [erasing.id],
    );
    for (const row of stored.rows) {
      expect(row.reason).toBeNull();
      expect(row.reason_sealed.toString('utf8')).not.toContain(ROUND.runId);
    }

    // A new record: only that patient is read again, and the result equals a fresh read.
    const token = await api.token(amended.userId, 'PATIENT');
    const { createRecord } = await api.ok<{ createRecord: { id: string } }>(
      'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }',
      { r: { ...observation('2345-7', 19.5), effectiveDateTime: '2024-12-30T08:00:00Z' } },
      token,
    );
    const afterRecord = await complete(source);
    expect(opened).toHaveBeenCalledTimes(2);
    expect(opened.mock.calls[1][0]).toEqual([amended.id]);
    expect(afterRecord).toEqual(await uncached());

    // An amendment (a new version of the record) likewise; its anchoring, which also updates
    // the record's row, does not.
    const readsBeforeAmendment = opened.mock.calls.length;
    await api.ok(
      'mutation($id: ID!, $r: JSON!) { updateRecord(id: $id, resource: $r, expectedVersion: 1) { version } }',
      {
        id: createRecord.id,
        r: { ...observation('2345-7', 31.5), effectiveDateTime: '2024-12-30T08:00:00Z' },
      },
      token,
    );
    const afterAmendment = await complete(source);
    expect(opened).toHaveBeenCalledTimes(readsBeforeAmendment + 1);
    expect(opened.mock.calls[readsBeforeAmendment][0]).toEqual([amended.id]);
    expect(afterAmendment).toEqual(await uncached());
    const readsAfterAmendment = opened.mock.calls.length;
    await api.db.query(
      `UPDATE records SET anchor_state = 'ANCHORED', ledger_tx_id = 'tx' WHERE id = $1`,
      [createRecord.id],
    );
    expect(await complete(source)).toEqual(afterAmendment);
    expect(opened).toHaveBeenCalledTimes(readsAfterAmendment);

    // A revocation and an erasure take effect from the next round.
    await api.ok(
      'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
      { id: grants.get(revoking.id) },
      await api.token(revoking.userId, 'PATIENT'),
    );
    await api.ok(
      'mutation { eraseMyData(confirm: true) }',
      {},
      await api.token(erasing.userId, 'PATIENT'),
    );
    const readsBefore = opened.mock.calls.length;
    const afterLeaving = await complete(source);
    // Leaving needs no read: those patients are simply no longer selected.
    expect(opened.mock.calls.length).toBe(readsBefore);
    const ids = new Set(afterLeaving.map((e) => e.id));
    expect(ids.has(revoking.id)).toBe(false);
    expect(ids.has(erasing.id)).toBe(false);
    expect(afterLeaving).toEqual(await uncached());
    // Their erasure shredded the key that sealed which runs used them: the events stay, unread.
    const erased = (await app().get(AccessLog).page(erasing.id)).items;
    const reasons = erased.filter((e) => e.action === 'TRAIN').map((e) => e.reason);
    expect(reasons.length).toBeGreaterThanOrEqual(2);
    expect(new Set(reasons)).toEqual(new Set([null]));
    opened.mockRestore();
  });

  it("reads only the records a patient's TRAIN grants admit: their types, categories and restriction", async () => {
    const consents = app().get(ConsentService);
    // Two with a Condition (the label's source), and one more, none of them used above.
    const { rows: sick } = await api.db.query(
      `SELECT DISTINCT patient_id::text AS id FROM records WHERE resource_type = 'Condition'`,
    );
    const hasCondition = new Set(sick.map((r: { id: string }) => r.id));
    const rest = ofSite().slice(4);
    const withLabel = rest.filter((p) => hasCondition.has(p.id));
    const patients = [
      withLabel[0],
      withLabel[1],
      rest.find((p) => !withLabel.slice(0, 2).includes(p))!,
    ];
    const actor = (p: (typeof patients)[number]) => ({
      id: p.userId,
      roles: ['PATIENT' as const],
      organizationId: p.organizationId,
    });
    const [typed, categorised, plain] = patients;
    const narrow = async (
      p: (typeof patients)[number],
      filters: { resourceTypes?: string[]; categories?: string[] },
    ) => {
      await consents.revoke(actor(p), grants.get(p.id)!);
      const grant = await consents.grant(actor(p), {
        granteeType: 'STUDY',
        granteeId: study.id,
        purpose: 'RESEARCH',
        actions: ['TRAIN'],
        ...filters,
      });
      grants.set(p.id, grant.id);
    };
    await narrow(typed, { resourceTypes: ['Observation', 'Patient'] });
    await narrow(categorised, { categories: ['vital-signs'] });
    // A restricted record of a patient whose grant leaves restricted records out.
    const { createRecord } = await api.ok<{ createRecord: { id: string } }>(
      'mutation($r: JSON!) { createRecord(input: { resource: $r, sensitivity: RESTRICTED }) { id } }',
      { r: { ...observation('2345-7', 9.9), effectiveDateTime: '2024-12-31T08:00:00Z' } },
      await api.token(plain.userId, 'PATIENT'),
    );

    const logged = jest.spyOn(records(), 'logTrainingUse');
    const examples = await complete(fresh());
    const uses = logged.mock.calls.at(-1)![2];
    logged.mockRestore();
    const typesOf = async (ids: string[]) =>
      (
        await api.db.query(
          'SELECT DISTINCT resource_type, category FROM records WHERE id = ANY($1::uuid[])',
          [ids],
        )
      ).rows as { resource_type: string; category: string | null }[];
    const usedOf = (p: (typeof patients)[number]) =>
      uses.filter((u) => u.patientId === p.id).flatMap((u) => u.recordIds);
    // Each use cites the patient's own grant.
    for (const p of patients) {
      expect(new Set(uses.filter((u) => u.patientId === p.id).map((u) => u.grantId))).toEqual(
        new Set([grants.get(p.id)]),
      );
    }
    expect(
      (await typesOf(usedOf(typed))).every((r) =>
        ['Observation', 'Patient'].includes(r.resource_type),
      ),
    ).toBe(true);
    expect((await typesOf(usedOf(categorised))).every((r) => r.category === 'vital-signs')).toBe(
      true,
    );
    expect(usedOf(plain)).not.toContain(createRecord.id);
    expect(usedOf(plain).length).toBeGreaterThan(0);
    // Their Conditions kept back, their label is unknown: no example of theirs is trained on.
    expect(examples.map((e) => e.id)).not.toContain(typed.id);
    expect(examples.map((e) => e.id)).not.toContain(categorised.id);
    // The cache agrees with a fresh read.
    expect(examples).toEqual(await uncached());
    // verify-ledger holds every TRAIN use to its grant's record filters, and finds them kept.
    const verified = await api.verifyLedger();
    expect(verified.text).not.toMatch(/outside what grant/);
    expect(verified.ok).toBe(true);
  });
});
