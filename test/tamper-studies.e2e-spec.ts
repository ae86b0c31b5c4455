// Tampering with the study catalogue through a database superuser, against a live server with
// its in-process training nodes: a study whose row was changed (its features widened, its
// owner swapped) or forged is withheld everywhere, trains no one and runs for no one, is
// reported, and verify-ledger names it. Studies from before registration are registered once,
// at the upgrade, and never again once the organisation registers its own.
import { randomUUID } from 'node:crypto';
import { ConsentService } from '../src/consent';
import { Coordinator } from '../src/federated/coordinator/coordinator.service';
import { seedCohort, SeedSummary } from '../src/federated/synthetic/seed';
import { codes, TestApi } from './helpers/test-api';

const START = `mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }`;
const STUDIES = `{ studies { id features ownerId } }`;
const STUDY = `query($id: ID!) { study(id: $id) { id features ownerId } }`;
const WIDER = ['2345-7', '4548-4', '8480-6', '39156-5'];

describe('tampering with studies in the database', () => {
  let api: TestApi;
  let summary: SeedSummary;
  let studyId: string;
  let patient: string;
  const researcher = () => api.token('res', 'RESEARCHER');
  const evil = () => api.token('res-evil', 'RESEARCHER');

  const trainEvents = async () =>
    Number(
      (await api.db.query(`SELECT count(*) FROM access_events WHERE action = 'TRAIN'`)).rows[0]
        .count,
    );

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'on' });
    summary = await seedCohort(api.server.app, { patients: 12, sites: 1, seed: 3, alpha: 1 });
    patient = await api.token(summary.patients[0].userId, 'PATIENT');
    studyId = (
      await api.ok<{ createStudy: { id: string } }>(
        `mutation { createStudy(input: { title: "Glucose", features: ["2345-7"],
           label: "44054006", minNodes: 1 }) { id } }`,
        {},
        await researcher(),
      )
    ).createStudy.id;
    const consents = api.server.app.get(ConsentService);
    for (const p of summary.patients) {
      await consents.grant(
        { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
        { granteeType: 'STUDY', granteeId: studyId, purpose: 'RESEARCH', actions: ['TRAIN'] },
      );
    }
  });
  afterAll(() => api?.stop());

  it('starts clean: verify-ledger compares the study with the terms the ledger registered', async () => {
    const result = await api.verifyLedger();
    expect(result.text).toMatch(/Studies: 1 compared with the terms registered on the ledger\./);
    expect(result.ok).toBe(true);
  });

  it('withholds a study whose features and owner were changed: no one sees, runs or trains it, and it is reported', async () => {
    const before = await api.integrityFailures('study');
    await api.db.query(`UPDATE studies SET features = $2, owner_id = 'res-evil' WHERE id = $1`, [
      studyId,
      WIDER,
    ]);

    const { studies } = await api.ok<{ studies: { id: string }[] }>(STUDIES, {}, patient);
    expect(studies.map((s) => s.id)).not.toContain(studyId);
    expect((await api.ok<{ study: unknown }>(STUDY, { id: studyId }, patient)).study).toBeNull();
    expect(await api.integrityFailures('study')).toBeGreaterThan(before);

    // Neither the new owner nor the real one runs it while its row is not the ledger's.
    expect(codes(await api.gql(START, { s: studyId }, await evil()))).toEqual(['NOT_FOUND']);
    expect(codes(await api.gql(START, { s: studyId }, await researcher()))).toEqual(['NOT_FOUND']);
    expect(await trainEvents()).toBe(0);
  });

  it('reports the changed study in verify-ledger, by id only', async () => {
    const result = await api.verifyLedger();
    expect(result.ok).toBe(false);
    expect(result.text).toContain(
      `BROKEN: study ${studyId}: its owner differs from the one the ledger registered`,
    );
    expect(result.text).not.toContain('res-evil');
    expect(result.text).not.toContain('4548-4');
  });

  it('still withholds it across a restart, and a features-only change too', async () => {
    await api.restart(async () => {
      await api.db.query(`UPDATE studies SET owner_id = 'res' WHERE id = $1`, [studyId]);
    });
    expect((await api.ok<{ study: unknown }>(STUDY, { id: studyId }, patient)).study).toBeNull();
    expect(codes(await api.gql(START, { s: studyId }, await researcher()))).toEqual(['NOT_FOUND']);
    const result = await api.verifyLedger();
    expect(result.text).toContain(
      `BROKEN: study ${studyId}: its terms differ from those the ledger registered`,
    );
  });

  it('trains on the registered features only once the row is put back as the ledger registered it', async () => {
    await api.db.query(`UPDATE studies SET features = '{2345-7}' WHERE id = $1`, [studyId]);
    const { study } = await api.ok<{ study: { features: string[]; ownerId: string } }>(
      STUDY,
      { id: studyId },
      patient,
    );
    expect(study).toEqual({ id: studyId, features: ['2345-7'], ownerId: 'res' });
    expect(codes(await api.gql(START, { s: studyId }, await evil()))).toEqual(['FORBIDDEN']);

    const coordinator = api.server.app.get(Coordinator);
    const closed = new Promise<{ status: string }>((resolve) =>
      coordinator.events.on('round', (e: { status: string }) => resolve(e)),
    );
    const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
      START,
      { s: studyId },
      await researcher(),
    );
    expect((await closed).status).toBe('CLOSED');
    // The model has one weight per registered feature, and a bias.
    const { rows } = await api.db.query(
      `SELECT octet_length(weights) AS bytes FROM model_versions WHERE run_id = $1 AND round = 1`,
      [startTraining.id],
    );
    expect(rows[0].bytes).toBe(4 * 2);
    expect(await trainEvents()).toBeGreaterThan(0);
    expect((await api.verifyLedger()).ok).toBe(true);
  });

  it('never lists, runs or registers a forged study row, even across a restart', async () => {
    const forged = randomUUID();
    await api.db.query(
      `INSERT INTO studies SELECT $1, title, 'res-evil', model, features, label, strategy,
         local_epochs, learning_rate, batch_size, min_nodes, round_deadline_ms, clip_norm,
         noise_multiplier, created_at FROM studies WHERE id = $2`,
      [forged, studyId],
    );
    const listed = async () =>
      (await api.ok<{ studies: { id: string }[] }>(STUDIES, {}, patient)).studies.map((s) => s.id);
    expect(await listed()).toEqual([studyId]);
    expect(codes(await api.gql(START, { s: forged }, await evil()))).toEqual(['NOT_FOUND']);
    // A patient cannot consent to it: the ledger knows no such study.
    const join = await api.gql(
      `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
         purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
      { s: forged },
      patient,
    );
    expect(codes(join)).toEqual(['BAD_USER_INPUT']);

    // This organisation registers its studies as it creates them: the start-up registration
    // of older studies no longer takes a row on trust.
    await api.restart();
    expect(await listed()).toEqual([studyId]);
    const result = await api.verifyLedger();
    expect(result.text).toContain(
      `BROKEN: study ${forged}: the ledger never registered it (forged, or its registration failed)`,
    );
  });
});

describe('studies from before registration', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'off' });
  });
  afterAll(() => api?.stop());

  it('are registered once at start-up as the database holds them, and listed', async () => {
    const legacy = randomUUID();
    // A study as an earlier version stored it, with nothing on the ledger.
    await api.restart(async () => {
      await api.db.query(
        `INSERT INTO studies (id, title, owner_id, model, features, label, strategy,
           local_epochs, learning_rate, batch_size, min_nodes, round_deadline_ms, clip_norm,
           noise_multiplier, created_at)
         VALUES ($1, 'Older', 'res-old', 'LOGISTIC', '{2345-7}', '44054006', 'FEDAVG', 1, 0.1,
           32, 2, 60000, NULL, NULL, now())`,
        [legacy],
      );
    });
    const patient = await api.token('pat', 'PATIENT');
    const { studies } = await api.ok<{ studies: { id: string; ownerId: string }[] }>(
      STUDIES,
      {},
      patient,
    );
    expect(studies).toEqual([{ id: legacy, features: ['2345-7'], ownerId: 'res-old' }]);
    const result = await api.verifyLedger();
    expect(result.text).toMatch(
      /Studies: 1 compared with the terms registered on the ledger \(1 registered at the upgrade/,
    );
    expect(result.ok).toBe(true);

    // Changed after its registration, it is withheld like any other.
    await api.db.query(`UPDATE studies SET label = '38341003' WHERE id = $1`, [legacy]);
    expect((await api.ok<{ studies: unknown[] }>(STUDIES, {}, patient)).studies).toEqual([]);
  });
});
