// myPatients: a clinician's patients are those whose active grants name them or their
// organisation, or to whom they hold a running emergency access; nothing else is listed.
import { randomUUID } from 'node:crypto';
import { countQueries } from './helpers/query-counter';
import { codes, TestApi } from './helpers/test-api';

const REGISTER = `mutation($name: String) { registerPatient(displayName: $name) { id } }`;
const MY_PATIENTS = `query($first: Int, $after: String) { myPatients(first: $first, after: $after) {
  items { patient { id displayName } grants { id status grantee { type id } fhir } emergencyUntil }
  nextCursor } }`;

type Access = {
  patient: { id: string; displayName: string | null };
  grants: {
    id: string;
    status: string;
    grantee: { type: string; id: string };
    fhir: { resourceType: string };
  }[];
  emergencyUntil: string | null;
};
describe('a clinician’s patients', () => {
  let api: TestApi;
  let dr: string;
  let colleague: string;
  let elsewhere: string;
  const ids: Record<string, string> = {};
  const tokens: Record<string, string> = {};

  const register = async (sub: string) => {
    tokens[sub] = await api.token(sub, 'PATIENT');
    ids[sub] = (
      await api.ok<{ registerPatient: { id: string } }>(
        REGISTER,
        { name: `Patient ${sub}` },
        tokens[sub],
      )
    ).registerPatient.id;
  };
  const listed = (token: string): Promise<Access[]> =>
    api.everyItem<Access>(MY_PATIENTS, { first: 2 }, token, 'myPatients');

  beforeAll(async () => {
    api = await TestApi.start();
    dr = await api.token('dr-who', 'CLINICIAN', 'org-a');
    colleague = await api.token('dr-colleague', 'CLINICIAN', 'org-a');
    elsewhere = await api.token('dr-elsewhere', 'CLINICIAN', 'org-b');
    for (const sub of [
      'granted',
      'revoked',
      'expired',
      'future',
      'org',
      'other',
      'emergency',
      'none',
    ]) {
      await register(sub);
    }
    await api.grantRead(tokens.granted, 'dr-who');
    const revoked = await api.grantRead(tokens.revoked, 'dr-who');
    await api.ok(
      'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
      { id: revoked },
      tokens.revoked,
    );
    await api.grantRead(tokens.future, 'dr-who', {
      validFrom: new Date(Date.now() + 3_600_000).toISOString(),
    });
    await api.grantRead(tokens.org, 'org-a', {
      granteeType: 'ORGANIZATION',
      actions: ['READ', 'WRITE'],
    });
    await api.grantRead(tokens.other, 'dr-colleague');
    await api.ok(
      'mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { id } }',
      { p: ids.emergency, r: 'unconscious on arrival, allergies unknown' },
      dr,
    );
    // A grant that runs out: the only wait is for the clock to pass its end.
    const until = Date.now() + 1_500;
    await api.grantRead(tokens.expired, 'dr-who', { validUntil: new Date(until).toISOString() });
    while (Date.now() <= until) await new Promise((r) => setTimeout(r, until + 10 - Date.now()));
  });
  afterAll(() => api?.stop());

  it('lists exactly the patients with an active grant to the clinician or their organisation, or an emergency', async () => {
    const items = await listed(dr);
    const names = items.map((i) => i.patient.id).sort();
    expect(names).toEqual([ids.emergency, ids.granted, ids.org].sort());
    expect(new Set(names).size).toBe(names.length);
  });

  it('gives each patient with the grants that apply, and a running emergency with its end', async () => {
    const byId = new Map((await listed(dr)).map((i) => [i.patient.id, i]));
    const granted = byId.get(ids.granted)!;
    expect(granted.patient.displayName).toBe('Patient granted');
    expect(granted.grants).toEqual([
      expect.objectContaining({ status: 'ACTIVE', grantee: { type: 'CLINICIAN', id: 'dr-who' } }),
    ]);
    expect(granted.grants[0].fhir.resourceType).toBe('Consent');
    expect(granted.emergencyUntil).toBeNull();
    expect(byId.get(ids.org)!.grants[0].grantee).toEqual({ type: 'ORGANIZATION', id: 'org-a' });
    const emergency = byId.get(ids.emergency)!;
    expect(emergency.grants).toEqual([]);
    expect(Date.parse(emergency.emergencyUntil!)).toBeGreaterThan(Date.now());
  });

  it("lists a colleague's own grants and the organisation's to the colleague, not the emergency", async () => {
    const names = (await listed(colleague)).map((i) => i.patient.id).sort();
    expect(names).toEqual([ids.org, ids.other].sort());
  });

  it('lists nothing for a clinician of another organisation', async () => {
    expect(await listed(elsewhere)).toEqual([]);
  });

  it('shows patient(id) to a clinician exactly for the patients on their list', async () => {
    const q = 'query($id: ID!) { patient(id: $id) { id displayName allowEmergencyAccess } }';
    for (const sub of ['granted', 'org', 'emergency']) {
      const res = await api.ok<{ patient: { id: string; displayName: string } }>(
        q,
        { id: ids[sub] },
        dr,
      );
      expect(res.patient).toEqual({
        id: ids[sub],
        displayName: `Patient ${sub}`,
        allowEmergencyAccess: true,
      });
    }
    for (const sub of ['revoked', 'expired', 'future', 'other', 'none']) {
      expect(codes(await api.gql(q, { id: ids[sub] }, dr))).toEqual(['NOT_FOUND']);
    }
    // Another organisation's clinician, a researcher, another patient and a made-up id
    // cannot tell a patient from no one.
    const researcher = await api.token('dr-research', 'RESEARCHER', 'org-a');
    for (const token of [elsewhere, researcher, tokens.none]) {
      expect(codes(await api.gql(q, { id: ids.granted }, token))).toEqual(['NOT_FOUND']);
    }
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      expect(codes(await api.gql(q, { id }, dr))).toEqual(['NOT_FOUND']);
    }
  });

  it('lists and shows no patient for a grant row forged in the database', async () => {
    await api.db.query(
      `INSERT INTO consent_grants SELECT $1, patient_id, grantee_type, 'dr-forged', purpose,
         actions, resource_types, categories, include_restricted, valid_from, valid_until,
         status, revoked_at, ledger_tx_id, revoked_tx_id, created_at, mac
       FROM consent_grants WHERE patient_id = $2 AND grantee_id = 'dr-who'`,
      [randomUUID(), ids.granted],
    );
    const forged = await api.token('dr-forged', 'CLINICIAN', 'org-c');
    expect(await listed(forged)).toEqual([]);
    const q = 'query($id: ID!) { patient(id: $id) { id displayName } }';
    expect(codes(await api.gql(q, { id: ids.granted }, forged))).toEqual(['NOT_FOUND']);
  });

  it('drops a patient as soon as the grant is revoked', async () => {
    const [grant] = (await listed(dr)).find((i) => i.patient.id === ids.granted)!.grants;
    await api.ok(
      'mutation($id: ID!) { revokeConsent(id: $id) { id } }',
      { id: grant.id },
      tokens.granted,
    );
    expect((await listed(dr)).map((i) => i.patient.id)).not.toContain(ids.granted);
  });

  describe('a page of many patients', () => {
    let many: string;
    const tables = [
      'patients',
      'users',
      'consent_grants',
      'emergency_accesses',
      'data_keys',
      'signed_consent_settings',
      'ai_decision_settings',
    ];
    /** Queries made reading the first page of `first` patients, `fields` asked of each. */
    const pageOf = (first: number, fields = '') =>
      countQueries(tables, async () => {
        const page = await api.ok<{
          myPatients: { items: (Access & { patient: Record<string, unknown> })[] };
        }>(
          `query($first: Int) { myPatients(first: $first) {
            items { patient { id displayName ${fields} } grants { id } emergencyUntil } } }`,
          { first },
          many,
        );
        expect(page.myPatients.items).toHaveLength(first);
        for (const item of page.myPatients.items) {
          expect(item.patient.displayName).toMatch(/^Patient many-/);
          expect(item.grants).toHaveLength(1);
        }
        return page;
      });

    beforeAll(async () => {
      many = await api.token('dr-many', 'CLINICIAN', 'org-c');
      for (let i = 0; i < 10; i++) {
        const sub = `many-${i}`;
        await register(sub);
        await api.grantRead(tokens[sub], 'dr-many');
        if (i % 3 === 0) {
          await api.ok(
            'mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { id } }',
            { p: ids[sub], r: 'collapsed in the waiting room' },
            many,
          );
        }
      }
    });

    it('reads a page in a fixed number of queries, however many patients it holds', async () => {
      const two = await pageOf(2);
      expect(await pageOf(10)).toBe(two);
    });

    it("reads the patients' settings in one query per field for the whole page", async () => {
      const fields = 'requireSignedConsent allowAiDecisions';
      const two = await pageOf(2, fields);
      expect(await pageOf(10, fields)).toBe(two);
      // Each setting as the patient's own view of it answers (the defaults, here).
      const page = await api.ok<{
        myPatients: { items: { patient: Record<string, unknown> }[] };
      }>(`{ myPatients(first: 10) { items { patient { ${fields} } } } }`, {}, many);
      for (const { patient } of page.myPatients.items) {
        expect(patient).toEqual({ requireSignedConsent: false, allowAiDecisions: true });
      }
    });
  });

  it('is for clinicians only, and refuses a cursor it did not issue', async () => {
    expect(codes(await api.gql(MY_PATIENTS, {}, tokens.none))).toEqual(['FORBIDDEN']);
    expect(codes(await api.gql(MY_PATIENTS, { after: 'not-a-cursor' }, dr))).toEqual([
      'BAD_USER_INPUT',
    ]);
  });
});
