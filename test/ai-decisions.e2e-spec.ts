// Auditable AI decisions over the API: a run trained to COMPLETED (its node simulated by a
// signed manifest, as in federated.e2e-spec), deployed on the ledger, then used on one patient
// under consent, with every decision on the ledger, in the patient's access log, verifiable,
// and its stored inputs shredded by erasure.
import { Pool } from 'pg';
import { LEDGER, Ledger } from '../src/ledger';
import { verifyAll } from '../src/verification';
import { registerSimulatedNode, submitUpdate } from './helpers/simulated-node';
import { codes, TestApi } from './helpers/test-api';

const GLUCOSE = '2345-7';
const AGE = '30525-0';
const FEATURES = [GLUCOSE, AGE];
/** The final model: LOGISTIC over glucose and age, as float32 weights then bias. */
const WEIGHTS = [0.75, 0.5, -0.25];

const DECISION_FIELDS = `id patientId modelId modelHash actorId probability inputs inputCommitment
  ledgerTxId createdAt`;

interface AiDecision {
  id: string;
  patientId: string;
  modelId: string;
  modelHash: string;
  actorId: string;
  probability: number;
  inputs: {
    asOf: string;
    features: {
      code: string;
      value: number;
      unit: string;
      source: { recordId: string; version: number; resourceType: string };
    }[];
  };
  inputCommitment: string;
  ledgerTxId: string;
}

describe('auditable AI decisions', () => {
  let api: TestApi;
  let ledger: Ledger;
  let researcher: string;
  let admin: string;
  let clinician: string;
  let studyId: string;
  let runId: string;
  let modelId: string;
  const ada = { token: '', id: '', recordIds: {} as Record<string, string> };
  const bob = { token: '', id: '' };

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'off' });
    ledger = api.server.app.get<Ledger>(LEDGER);
    researcher = await api.token('rosa', 'RESEARCHER');
    admin = await api.token('root', 'ADMIN');
    clinician = await api.token('dr-grey', 'CLINICIAN', 'org1');

    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation($f: [String!]!) { createStudy(input: { title: "Diabetes risk", features: $f,
         label: "44054006", minNodes: 1 }) { id } }`,
      { f: FEATURES },
      researcher,
    );
    studyId = createStudy.id;
    const node = await registerSimulatedNode(api, admin);

    ada.token = await api.token('ada', 'PATIENT');
    ada.id = (await register(ada.token)).id;
    bob.token = await api.token('bob', 'PATIENT');
    bob.id = (await register(bob.token)).id;
    await api.ok(
      `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
         purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
      { s: studyId },
      ada.token,
    );

    // One round, one update from one node: the run completes with exactly WEIGHTS.
    runId = await startRun(1);
    const status = await submitUpdate(api, node, {
      runId,
      round: 1,
      weights: WEIGHTS,
      contributors: [ada.id],
      metrics: { loss: 0.4, accuracy: 0.8, auc: 0.87 },
    });
    expect(status).toBeLessThan(300);

    ada.recordIds.patient = await api.createRecord(ada.token, {
      resourceType: 'Patient',
      birthDate: '1960-05-01',
    });
    ada.recordIds.oldGlucose = await api.createRecord(ada.token, glucose(160, '2025-01-10'));
    ada.recordIds.glucose = await api.createRecord(ada.token, glucose(118, '2026-02-01'));
    // Not usable: preliminary, and in another unit.
    await api.createRecord(ada.token, glucose(300, '2026-03-01', { status: 'preliminary' }));
    await api.createRecord(ada.token, glucose(7, '2026-03-02', { unit: 'mmol/L' }));
    await api.createRecord(bob.token, { resourceType: 'Patient', birthDate: '1970-01-01' });
  });

  afterAll(() => api?.stop());

  async function register(token: string): Promise<{ id: string }> {
    return (
      await api.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        token,
      )
    ).registerPatient;
  }

  async function startRun(rounds: number): Promise<string> {
    const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
      'mutation($s: ID!, $r: Int!) { startTraining(studyId: $s, rounds: $r) { id } }',
      { s: studyId, r: rounds },
      researcher,
    );
    return startTraining.id;
  }

  function glucose(
    value: number,
    date: string,
    { status = 'final', unit = 'mg/dL' } = {},
  ): Record<string, unknown> {
    return {
      resourceType: 'Observation',
      status,
      category: [
        {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/observation-category',
              code: 'laboratory',
            },
          ],
        },
      ],
      code: { coding: [{ system: 'http://loinc.org', code: GLUCOSE }] },
      effectiveDateTime: `${date}T08:00:00Z`,
      valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
    };
  }

  const assess = (patientId: string, token = clinician) =>
    api.gql<{ assessRisk: AiDecision }>(
      `mutation($p: ID!, $m: ID!) { assessRisk(patientId: $p, modelId: $m) { ${DECISION_FIELDS} } }`,
      { p: patientId, m: modelId },
      token,
    );

  const verify = async (id: string, token = admin) =>
    (
      await api.ok<{
        verifyDecision: {
          status: string;
          recomputedProbability: number | null;
          ledgerCommitment: string | null;
          problems: string[];
        };
      }>(
        `query($id: ID!) { verifyDecision(id: $id) { decisionId status recomputedProbability
           ledgerCommitment problems } }`,
        { id },
        token,
      )
    ).verifyDecision;

  const storedDecisions = async () =>
    Number((await api.db.query('SELECT count(*) AS n FROM ai_decisions')).rows[0].n);

  const grantRead = (terms: Record<string, unknown> = {}) =>
    api.grantRead(ada.token, 'dr-grey', terms);

  const revoke = (id: string) =>
    api.ok('mutation($id: ID!) { revokeConsent(id: $id) { id } }', { id }, ada.token);

  /** What verify-ledger reports about AI decisions: its summary line and broken lines. */
  async function verifyLedgerLines(): Promise<string[]> {
    const pool = new Pool({ connectionString: api.config.databaseUrl, max: 1 });
    try {
      const { lines } = await verifyAll(pool, 'org1');
      return lines.filter((l) => /AI decision|deployed model/.test(l));
    } finally {
      await pool.end();
    }
  }

  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

  describe('deployModel', () => {
    it('refuses a run that is not COMPLETED, and anyone but the owner or an administrator', async () => {
      const running = await startRun(2);
      const deploy = (id: string, token: string) =>
        api.gql('mutation($r: ID!) { deployModel(runId: $r) { id } }', { r: id }, token);
      const notDone = await deploy(running, researcher);
      expect(codes(notDone)).toEqual(['BAD_USER_INPUT']);
      expect(notDone.errors![0].message).toContain('RUNNING');
      expect(codes(await deploy(runId, await api.token('mallory', 'RESEARCHER')))).toEqual([
        'FORBIDDEN',
      ]);
      expect(codes(await deploy(runId, clinician))).toEqual(['FORBIDDEN']);
      await api.ok(
        'mutation($r: ID!) { cancelTraining(runId: $r) { id } }',
        { r: running },
        researcher,
      );
    });

    it("deploys the run's final model on the ledger, linked to its last RecordRound", async () => {
      const { trainingRun } = await api.ok<{
        trainingRun: { status: string; modelHash: string; provenanceTxIds: string[] };
      }>(
        'query($id: ID!) { trainingRun(id: $id) { status modelHash provenanceTxIds } }',
        { id: runId },
        researcher,
      );
      expect(trainingRun.status).toBe('COMPLETED');
      const { deployModel } = await api.ok<{ deployModel: Record<string, unknown> }>(
        `mutation($r: ID!) { deployModel(runId: $r) { id runId studyId modelHash features label
           auc epsilon deployedAt ledgerTxId } }`,
        { r: runId },
        researcher,
      );
      modelId = deployModel.id as string;
      expect(deployModel).toMatchObject({
        runId,
        studyId,
        modelHash: trainingRun.modelHash,
        features: FEATURES,
        label: '44054006',
        epsilon: null,
      });
      expect(deployModel.auc).toBeCloseTo(0.87, 9);
      const onLedger = await ledger.evaluate<Record<string, unknown>>(
        'decisions',
        'GetDeployment',
        [modelId],
      );
      expect(onLedger).toMatchObject({
        runId,
        round: 1,
        modelHash: trainingRun.modelHash,
        roundTxId: trainingRun.provenanceTxIds.at(-1),
        txId: deployModel.ledgerTxId,
      });
      // A deployment the database lost (a crash after the ledger committed) is adopted again.
      await api.db.query('DELETE FROM deployed_models WHERE id = $1', [modelId]);
      const adopted = await api.ok<{ deployModel: { id: string; ledgerTxId: string } }>(
        'mutation($r: ID!) { deployModel(runId: $r) { id ledgerTxId } }',
        { r: runId },
        researcher,
      );
      expect(adopted.deployModel).toEqual({ id: modelId, ledgerTxId: deployModel.ledgerTxId });
      // Deploying again answers the same deployment; an administrator may deploy too.
      const again = await api.ok<{ deployModel: { id: string } }>(
        'mutation($r: ID!) { deployModel(runId: $r) { id } }',
        { r: runId },
        admin,
      );
      expect(again.deployModel.id).toBe(modelId);
      const { deployedModels } = await api.ok<{ deployedModels: { id: string }[] }>(
        '{ deployedModels { id } }',
        {},
        clinician,
      );
      expect(deployedModels.map((m) => m.id)).toEqual([modelId]);
    });
  });

  describe('assessRisk', () => {
    it('needs a grant to READ for TREATMENT, and one covering every record type the model reads', async () => {
      expect(codes(await assess(ada.id))).toEqual(['CONSENT_REQUIRED']);
      const conditions = await grantRead({ resourceTypes: ['Condition'] });
      expect(codes(await assess(ada.id))).toEqual(['CONSENT_REQUIRED']);
      // Glucose is an Observation, but age comes from the Patient resource.
      const observations = await grantRead({ resourceTypes: ['Observation'] });
      const res = await assess(ada.id);
      expect(codes(res)).toEqual(['CONSENT_REQUIRED']);
      expect(res.errors![0].message).toContain('Patient');
      await revoke(conditions);
      await revoke(observations);
      // Nor does a grant to write without reading.
      await grantRead({ actions: ['WRITE'] });
      expect(codes(await assess(ada.id))).toEqual(['CONSENT_REQUIRED']);
      expect(await storedDecisions()).toBe(0);
    });

    it('assesses from the latest usable records with the training feature code, and records the decision first', async () => {
      const grantId = await grantRead({ resourceTypes: ['Observation', 'Patient'] });
      const before = Date.now();
      const res = await assess(ada.id);
      expect(res.errors).toBeUndefined();
      const d = res.data!.assessRisk;
      expect(d).toMatchObject({ patientId: ada.id, modelId, actorId: 'dr-grey' });
      const [g, age] = d.inputs.features;
      expect(g).toMatchObject({
        code: GLUCOSE,
        value: 118,
        unit: 'mg/dL',
        source: { recordId: ada.recordIds.glucose, version: 1, resourceType: 'Observation' },
      });
      expect(age).toMatchObject({
        code: AGE,
        unit: 'a',
        source: { recordId: ada.recordIds.patient, version: 1, resourceType: 'Patient' },
      });
      const expectedAge = (Date.parse(d.inputs.asOf) - Date.UTC(1960, 4, 1)) / 86_400_000 / 365.25;
      expect(age.value).toBeCloseTo(expectedAge, 9);
      expect(Date.parse(d.inputs.asOf)).toBeGreaterThanOrEqual(before);
      // The fixed clinical scales: glucose (v − 100) / 25, age (v − 50) / 15.
      const z = WEIGHTS[0] * ((118 - 100) / 25) + WEIGHTS[1] * ((age.value - 50) / 15) + WEIGHTS[2];
      expect(d.probability).toBeCloseTo(sigmoid(z), 5);

      const onLedger = await ledger.evaluate<Record<string, unknown>>('decisions', 'GetDecision', [
        d.id,
      ]);
      expect(onLedger).toEqual({
        id: d.id,
        patientId: ada.id,
        deploymentId: modelId,
        modelHash: d.modelHash,
        actorId: 'dr-grey',
        grantId,
        inputCommitment: d.inputCommitment,
        output: d.probability,
        txId: d.ledgerTxId,
        decidedAt: expect.any(String),
        recordedBy: expect.any(String),
      });

      // One access event, shown to the patient: what was read to decide, under which grant.
      const { accessLog } = await api.ok<{
        accessLog: {
          items: { actorId: string; recordIds: string[]; consentId: string; reason: string }[];
        };
      }>(
        'query($p: ID!) { accessLog(patientId: $p, first: 1) { items { actorId recordIds consentId reason } } }',
        { p: ada.id },
        ada.token,
      );
      expect(accessLog.items[0]).toEqual({
        actorId: 'dr-grey',
        recordIds: [ada.recordIds.glucose, ada.recordIds.patient],
        consentId: grantId,
        reason: `AI risk assessment ${d.id} with deployed model ${modelId}`,
      });
    });

    it('names the missing LOINC code and records nothing when a feature is missing', async () => {
      await api.grantRead(bob.token, 'dr-grey');
      const decisions = await storedDecisions();
      const events = Number(
        (
          await api.db.query('SELECT count(*) AS n FROM access_events WHERE patient_id = $1', [
            bob.id,
          ])
        ).rows[0].n,
      );
      const res = await assess(bob.id);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toContain(`LOINC ${GLUCOSE}`);
      expect(res.errors![0].message).not.toContain(AGE);
      expect(await storedDecisions()).toBe(decisions);
      const after = await api.db.query(
        'SELECT count(*) AS n FROM access_events WHERE patient_id = $1',
        [bob.id],
      );
      expect(Number(after.rows[0].n)).toBe(events);
    });

    it('says, from the grants alone, when a missing value may be one they do not cover by category', async () => {
      await api.grantRead(bob.token, 'dr-cat', { categories: ['laboratory'] });
      const res = await assess(bob.id, await api.token('dr-cat', 'CLINICIAN', 'org1'));
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toContain(
        'among the records your grants cover (categories laboratory only: the patient may grant more)',
      );
      // Unlimited by category: nothing said of grants (as before), whatever the patient holds.
      expect((await assess(bob.id)).errors![0].message).not.toContain('grants cover');
    });

    it('refuses a cursor it never issued', async () => {
      const res = await api.gql(
        'query($p: ID!, $a: String) { aiDecisions(patientId: $p, after: $a) { items { id } } }',
        { p: bob.id, a: 'garbage' },
        bob.token,
      );
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
    });

    it('is FORBIDDEN while the patient refuses AI decisions, and allowed again once they agree', async () => {
      const set = async (allow: boolean) =>
        (
          await api.ok<{ setAiDecisions: { id: string; allowAiDecisions: boolean } }>(
            'mutation($a: Boolean!) { setAiDecisions(allow: $a) { id allowAiDecisions } }',
            { a: allow },
            ada.token,
          )
        ).setAiDecisions;
      const { patient } = await api.ok<{ patient: { allowAiDecisions: boolean } }>(
        'query($id: ID!) { patient(id: $id) { allowAiDecisions } }',
        { id: ada.id },
        ada.token,
      );
      expect(patient.allowAiDecisions).toBe(true);
      expect(await set(false)).toEqual({ id: ada.id, allowAiDecisions: false });
      const decisions = await storedDecisions();
      const refused = await assess(ada.id);
      expect(codes(refused)).toEqual(['FORBIDDEN']);
      expect(refused.errors![0].message).toContain('refused AI decisions');
      expect(await storedDecisions()).toBe(decisions);
      // A refusal altered in the database still reads as a refusal; one deleted there is still
      // refused by the ledger, and nothing is recorded.
      await api.db.query('UPDATE ai_decision_settings SET allow = true WHERE patient_id = $1', [
        ada.id,
      ]);
      expect(codes(await assess(ada.id))).toEqual(['FORBIDDEN']);
      await api.db.query('DELETE FROM ai_decision_settings WHERE patient_id = $1', [ada.id]);
      const byLedger = await assess(ada.id);
      expect(codes(byLedger)).toEqual(['FORBIDDEN']);
      expect(byLedger.errors![0].message).toContain('refused AI decisions');
      expect(await storedDecisions()).toBe(decisions);
      expect(await set(true)).toEqual({ id: ada.id, allowAiDecisions: true });
      expect(codes(await assess(ada.id))).toEqual([]);
    });
  });

  describe('aiDecisions and verifyDecision', () => {
    it('shows the patient and a reading clinician the decisions, newest first; others get CONSENT_REQUIRED', async () => {
      const list = (token: string, first = 10, after?: string) =>
        api.gql<{ aiDecisions: { items: AiDecision[]; nextCursor: string | null } }>(
          `query($p: ID!, $f: Int, $a: String) { aiDecisions(patientId: $p, first: $f, after: $a) {
             items { id probability inputs createdAt } nextCursor } }`,
          { p: ada.id, f: first, a: after },
          token,
        );
      const mine = (await list(ada.token)).data!.aiDecisions.items;
      expect(mine).toHaveLength(2);
      const { rows } = await api.db.query(
        'SELECT id FROM ai_decisions WHERE patient_id = $1 ORDER BY created_at DESC, id DESC',
        [ada.id],
      );
      expect(mine.map((d) => d.id)).toEqual(rows.map((r: { id: string }) => r.id));
      expect(mine[0].inputs.features[0].value).toBe(118);
      const first = (await list(clinician, 1)).data!.aiDecisions;
      expect(first.items.map((d) => d.id)).toEqual([mine[0].id]);
      const second = (await list(clinician, 1, first.nextCursor!)).data!.aiDecisions;
      expect(second.items.map((d) => d.id)).toEqual([mine[1].id]);
      expect(second.nextCursor).toBeNull();
      expect(codes(await list(await api.token('dr-house', 'CLINICIAN')))).toEqual([
        'CONSENT_REQUIRED',
      ]);
      // A clinician whose grant admits none of the records the decisions read sees none of them.
      await api.grantRead(ada.token, 'dr-vitals', { categories: ['vital-signs'] });
      const vitals = await list(await api.token('dr-vitals', 'CLINICIAN'));
      expect(vitals.data!.aiDecisions.items).toEqual([]);
    });

    it('verifies a decision by recomputing it: the same inputs give the same probability', async () => {
      const { rows } = await api.db.query(
        'SELECT id, probability, input_commitment FROM ai_decisions WHERE patient_id = $1',
        [ada.id],
      );
      for (const row of rows as { id: string; probability: number; input_commitment: string }[]) {
        for (const token of [admin, ada.token, clinician]) {
          expect(await verify(row.id, token)).toEqual({
            decisionId: row.id,
            status: 'VERIFIED',
            // The risk score is the patient's: an administrator (unlogged) learns only that it
            // verified.
            recomputedProbability: token === admin ? null : row.probability,
            ledgerCommitment: row.input_commitment,
            problems: [],
          });
        }
      }
      const stranger = await api.gql(
        'query($id: ID!) { verifyDecision(id: $id) { status } }',
        { id: rows[0].id },
        await api.token('dr-house', 'CLINICIAN'),
      );
      expect(codes(stranger)).toEqual(['NOT_FOUND']);
      // A grant that admits none of the records a decision read shows it no more here than in
      // aiDecisions: its output was computed from records the grant keeps out.
      const partial = await api.gql(
        'query($id: ID!) { verifyDecision(id: $id) { status } }',
        { id: rows[0].id },
        await api.token('dr-vitals', 'CLINICIAN'),
      );
      expect(codes(partial)).toEqual(['NOT_FOUND']);
    });

    it('answers MISMATCH for a tampered output, swapped inputs, or a forged row', async () => {
      const { rows } = await api.db.query(
        'SELECT * FROM ai_decisions WHERE patient_id = $1 ORDER BY created_at',
        [ada.id],
      );
      const [a, b] = rows as { id: string; probability: number; inputs_sealed: Buffer }[];

      expect(await verifyLedgerLines()).toEqual([
        'AI decisions: 1 deployed model(s) and 2 decision(s) compared with the ledger.',
      ]);
      await api.db.query('UPDATE ai_decisions SET probability = 0.01 WHERE id = $1', [a.id]);
      const output = await verify(a.id);
      expect(output.status).toBe('MISMATCH');
      expect(output.problems).toContain("the stored probability differs from the ledger's");
      expect(await verifyLedgerLines()).toContain(
        `  BROKEN: AI decision ${a.id}: its probability differs from the ledger's`,
      );
      await api.db.query('UPDATE ai_decisions SET probability = $2 WHERE id = $1', [
        a.id,
        a.probability,
      ]);

      await api.db.query('UPDATE ai_decisions SET inputs_sealed = $2 WHERE id = $1', [
        a.id,
        b.inputs_sealed,
      ]);
      const swapped = await verify(a.id);
      expect(swapped.status).toBe('MISMATCH');
      expect(swapped.problems.join('\n')).toContain('cannot be opened');
      await api.db.query('UPDATE ai_decisions SET inputs_sealed = $2 WHERE id = $1', [
        a.id,
        a.inputs_sealed,
      ]);
      expect((await verify(a.id)).status).toBe('VERIFIED');

      const forged = '00000000-0000-4000-8000-00000000f0f0';
      await api.db.query(
        `INSERT INTO ai_decisions SELECT $2, patient_id, model_id, model_hash, actor_id, grant_id,
           key_id, inputs_sealed, input_commitment, 0.99, ledger_tx_id, created_at
         FROM ai_decisions WHERE id = $1`,
        [a.id, forged],
      );
      const fake = await verify(forged);
      expect(fake.status).toBe('MISMATCH');
      expect(fake.problems).toContain('the decision is not on the ledger');
      await api.db.query('DELETE FROM ai_decisions WHERE id = $1', [forged]);
    });
  });

  describe('erasure', () => {
    it('leaves the decisions unreadable and their ledger entries intact', async () => {
      const { rows } = await api.db.query('SELECT id FROM ai_decisions WHERE patient_id = $1', [
        ada.id,
      ]);
      await api.ok('mutation { eraseMyData(confirm: true) }', {}, ada.token);
      for (const { id } of rows as { id: string }[]) {
        const after = await verify(id);
        expect(after.status).toBe('MISMATCH');
        expect(after.recomputedProbability).toBeNull();
        // Said as what it is, not as tampering: only the shredded inputs are missing.
        expect(after.problems).toEqual([
          'the stored inputs were erased with the patient’s data (the patient erased it), so the decision can no longer be recomputed',
        ]);
        const onLedger = await ledger.evaluate<{ id: string }>('decisions', 'GetDecision', [id]);
        expect(onLedger.id).toBe(id);
      }
      const list = await api.gql(
        'query($p: ID!) { aiDecisions(patientId: $p) { items { id } } }',
        { p: ada.id },
        clinician,
      );
      expect(codes(list)).toEqual(['CONSENT_REQUIRED']);
    });
  });

  // After erasure, on patients of their own: the counts checked above stay as they are.
  describe('what a clinician may not read', () => {
    const cleo = { token: '', id: '', visible: '', restricted: '', patient: '' };
    const dan = { token: '', id: '' };
    let lee: string;

    interface LoggedEvent {
      actorId: string;
      recordIds: string[];
      purpose: string;
      decision: string;
      consentId: string | null;
      reason: string | null;
    }
    const accessLog = async (patientToken: string, patientId: string, first = 1) =>
      (
        await api.ok<{ accessLog: { items: LoggedEvent[] } }>(
          `query($p: ID!, $f: Int) { accessLog(patientId: $p, first: $f) { items { actorId
             recordIds purpose decision consentId reason } } }`,
          { p: patientId, f: first },
          patientToken,
        )
      ).accessLog.items;
    const eventCount = async (patientId: string) =>
      Number(
        (
          await api.db.query('SELECT count(*) AS n FROM access_events WHERE patient_id = $1', [
            patientId,
          ])
        ).rows[0].n,
      );
    const restrictedGlucose = (value: number, date: string) => ({
      ...glucose(value, date),
      meta: {
        security: [
          { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' },
        ],
      },
    });
    const listIds = async (patientId: string, token: string) => {
      const res = await api.gql<{ aiDecisions: { items: { id: string }[] } }>(
        'query($p: ID!) { aiDecisions(patientId: $p, first: 50) { items { id } } }',
        { p: patientId },
        token,
      );
      return codes(res).length ? null : res.data!.aiDecisions.items.map((d) => d.id);
    };

    beforeAll(async () => {
      cleo.token = await api.token('cleo', 'PATIENT');
      cleo.id = (await register(cleo.token)).id;
      cleo.patient = await api.createRecord(cleo.token, {
        resourceType: 'Patient',
        birthDate: '1955-03-01',
      });
      cleo.visible = await api.createRecord(cleo.token, glucose(140, '2026-01-05'));
      dan.token = await api.token('dan', 'PATIENT');
      dan.id = (await register(dan.token)).id;
      await api.createRecord(dan.token, { resourceType: 'Patient', birthDate: '1965-07-01' });
      lee = await api.token('dr-lee', 'CLINICIAN', 'org1');
    });

    it('decides from the newest value the clinician may read; a newer restricted one changes nothing', async () => {
      const grantId = await api.grantRead(cleo.token, 'dr-lee');
      const before = await assess(cleo.id, lee);
      expect(codes(before)).toEqual([]);
      expect(before.data!.assessRisk.inputs.features[0]).toMatchObject({
        value: 140,
        source: { recordId: cleo.visible },
      });

      cleo.restricted = await api.createRecord(cleo.token, restrictedGlucose(200, '2026-02-05'));
      const after = await assess(cleo.id, lee);
      expect(codes(after)).toEqual([]);
      const d = after.data!.assessRisk;
      expect(d.inputs.features[0]).toMatchObject({
        value: 140,
        source: { recordId: cleo.visible },
      });
      expect(d.probability).toBeCloseTo(before.data!.assessRisk.probability, 6);
      // What was sealed, committed to and logged holds only records the grant admits.
      const { aiDecisions } = await api.ok<{ aiDecisions: { items: AiDecision[] } }>(
        'query($p: ID!) { aiDecisions(patientId: $p, first: 1) { items { id inputs } } }',
        { p: cleo.id },
        cleo.token,
      );
      expect(aiDecisions.items[0].id).toBe(d.id);
      expect(aiDecisions.items[0].inputs.features.map((f) => f.source.recordId)).toEqual([
        cleo.visible,
        cleo.patient,
      ]);
      expect((await verify(d.id, lee)).status).toBe('VERIFIED');
      const [assessed] = (await accessLog(cleo.token, cleo.id, 3)).filter((e) =>
        e.reason?.startsWith('AI risk assessment'),
      );
      expect(assessed).toMatchObject({
        actorId: 'dr-lee',
        recordIds: [cleo.visible, cleo.patient],
        consentId: grantId,
      });

      // A grant that admits restricted records reads the newer value.
      const withRestricted = await api.token('dr-rae', 'CLINICIAN', 'org1');
      await api.grantRead(cleo.token, 'dr-rae', { includeRestricted: true });
      const rae = await assess(cleo.id, withRestricted);
      expect(rae.data!.assessRisk.inputs.features[0]).toMatchObject({
        value: 200,
        source: { recordId: cleo.restricted },
      });
    });

    it('answers a value held only in a restricted record as missing, as for a patient with none', async () => {
      await api.createRecord(dan.token, restrictedGlucose(180, '2026-02-01'));
      await api.grantRead(dan.token, 'dr-lee');
      const decisions = await storedDecisions();
      const hidden = await assess(dan.id, lee);
      const none = await assess(bob.id); // Bob has no glucose value at all.
      expect(codes(hidden)).toEqual(['BAD_USER_INPUT']);
      expect(codes(none)).toEqual(['BAD_USER_INPUT']);
      expect(hidden.errors![0].message).toBe(none.errors![0].message);
      expect(hidden.errors![0].extensions).toEqual(none.errors![0].extensions);
      expect(await storedDecisions()).toBe(decisions);
    });

    it('logs a clinician’s or the patient’s verifyDecision as aiDecisions logs the decision shown', async () => {
      // dr-lee is shown his own decisions, not dr-rae's (it read the restricted record).
      const [leeDecision] = (await listIds(cleo.id, lee))!;
      const [shown] = await accessLog(cleo.token, cleo.id);
      expect(shown).toMatchObject({ actorId: 'dr-lee', recordIds: [cleo.visible, cleo.patient] });
      expect((await verify(leeDecision, lee)).status).toBe('VERIFIED');
      const [logged] = await accessLog(cleo.token, cleo.id);
      expect(logged).toEqual({ ...shown, reason: `Verification of AI decision ${leeDecision}` });
      expect(logged).toMatchObject({ decision: 'PERMIT', purpose: 'TREATMENT' });

      await verify(leeDecision, cleo.token);
      expect((await accessLog(cleo.token, cleo.id))[0]).toMatchObject({
        actorId: 'cleo',
        recordIds: [cleo.visible, cleo.patient],
        decision: 'PERMIT',
        purpose: 'SELF',
        consentId: null,
        reason: `Verification of AI decision ${leeDecision}`,
      });
      // An administrator checks against the ledger without access to the patient: no event.
      const events = await eventCount(cleo.id);
      await verify(leeDecision, admin);
      expect(await eventCount(cleo.id)).toBe(events);
      // Every PERMIT logged cites what the ledger held: the grant, or the patient herself.
      const { verifyAccessLog } = await api.ok<{ verifyAccessLog: { ok: boolean } }>(
        'query($p: ID!) { verifyAccessLog(patientId: $p) { ok } }',
        { p: cleo.id },
        cleo.token,
      );
      expect(verifyAccessLog.ok).toBe(true);
    });

    it('refuses verifyDecision to a clinician exactly when aiDecisions would not show the decision, and logs the refusal', async () => {
      await api.grantRead(cleo.token, 'dr-labs', { categories: ['vital-signs'] });
      const clinicians = [
        lee,
        await api.token('dr-rae', 'CLINICIAN', 'org1'),
        await api.token('dr-labs', 'CLINICIAN', 'org1'),
        await api.token('dr-nobody', 'CLINICIAN', 'org1'),
      ];
      const all = (await listIds(cleo.id, cleo.token))!;
      expect(all.length).toBeGreaterThanOrEqual(3);
      for (const token of clinicians) {
        const listed = (await listIds(cleo.id, token)) ?? [];
        for (const id of all) {
          const events = await eventCount(cleo.id);
          const res = await api.gql(
            'query($id: ID!) { verifyDecision(id: $id) { status recomputedProbability } }',
            { id },
            token,
          );
          const [event] = await accessLog(cleo.token, cleo.id);
          expect(await eventCount(cleo.id)).toBe(events + 1);
          if (listed.includes(id)) {
            expect(codes(res)).toEqual([]);
            expect(event).toMatchObject({ decision: 'PERMIT', recordIds: expect.any(Array) });
            expect(event.recordIds.length).toBeGreaterThan(0);
          } else {
            expect(codes(res)).toEqual(['NOT_FOUND']);
            expect(event).toMatchObject({ decision: 'DENY', recordIds: [] });
          }
        }
      }
    });
  });
});
