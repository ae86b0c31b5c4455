// Search by code and clinical date, and the newest Observation per code: consent first, no
// clinical code at rest in plaintext, and the index never trusted on its own.
import { codes, TestApi } from './helpers/test-api';
import { condition, LOINC, observation, vitalSign } from './helpers/fhir';
import { corpusResource } from './helpers/fhir-corpus';
import { INDEX_VERSION } from '../src/records/search/record-index';

const REGISTER = `mutation { registerPatient { id } }`;
const CREATE = `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id createdAt } }`;
const SEARCH = `query($p: ID!, $code: String, $since: DateTime, $until: DateTime, $type: String) {
  records(patientId: $p, code: $code, since: $since, until: $until, resourceType: $type) {
    items { id resourceType effectiveAt integrity resource } nextCursor } }`;
const LATEST = `query($p: ID!, $codes: [String!]!) {
  latestObservations(patientId: $p, codes: $codes) { id effectiveAt integrity resource } }`;

type Found = {
  id: string;
  resourceType: string;
  effectiveAt: string;
  integrity: string;
  resource: Record<string, unknown>;
};

const HBA1C = '4548-4';
const GLUCOSE = '2345-7';
const SNOMED = 'http://snomed.info/sct';

function hba1c(at: string, value: number) {
  return { ...observation(HBA1C, value, '%'), effectiveDateTime: at };
}

describe('searching records by code and clinical date', () => {
  let api: TestApi;
  let alice: string;
  let aliceId: string;
  let bob: string;
  let bobId: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    api = await TestApi.start();
    alice = await api.token('alice', 'PATIENT');
    bob = await api.token('bob', 'PATIENT');
    aliceId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, alice))
      .registerPatient.id;
    bobId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, bob)).registerPatient
      .id;
    // Written out of clinical order: "newest" means by clinical date, not by creation.
    ids.a2025 = await create(hba1c('2025-03-01T08:00:00Z', 6.9));
    ids.a2023 = await create(hba1c('2023-01-10', 7.4));
    ids.a2024 = await create(hba1c('2024-06-01T10:30:00+02:00', 7.1));
    ids.glucose = await create({ ...observation(GLUCOSE), effectiveDateTime: '2024-07-01' });
    ids.bp = await create({ ...vitalSign('8480-6', 131), issued: '2024-08-02T09:00:00Z' });
    ids.bpOld = await create({ ...vitalSign('8480-6', 150), effectiveDateTime: '2019-05' });
    ids.diabetes = await create({ ...condition('44054006'), onsetDateTime: '2020-02-03' });
    ids.undated = await create(observation('718-7'));
  });
  afterAll(() => api?.stop());

  async function create(resource: Record<string, unknown>, token = alice): Promise<string> {
    const { createRecord } = await api.ok<{ createRecord: { id: string } }>(
      CREATE,
      { input: { resource } },
      token,
    );
    return createRecord.id;
  }

  const search = (vars: Record<string, unknown>, token = alice) =>
    api.gql<{ records: { items: Found[] } }>(SEARCH, { p: aliceId, ...vars }, token);
  const found = async (vars: Record<string, unknown>, token = alice) => {
    const res = await search(vars, token);
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data!.records.items.map((r) => r.id);
  };

  describe('by code', () => {
    it('finds every record whose main code carries a system|code token, newest written first', async () => {
      expect(await found({ code: `${LOINC}|${HBA1C}` })).toEqual([ids.a2024, ids.a2023, ids.a2025]);
    });

    it('matches a bare code in any system, and |code only without a system', async () => {
      expect(await found({ code: HBA1C })).toHaveLength(3);
      expect(await found({ code: `|${HBA1C}` })).toEqual([]);
      expect(await found({ code: `http://example.org/other|${HBA1C}` })).toEqual([]);
      expect(await found({ code: `${SNOMED}|44054006` })).toEqual([ids.diabetes]);
    });

    it('combines a code with the other filters', async () => {
      expect(await found({ code: HBA1C, type: 'Condition' })).toEqual([]);
      expect(await found({ code: '8480-6', type: 'Observation' })).toEqual([ids.bpOld, ids.bp]);
    });

    it('matches system| as any code of that system', async () => {
      expect(await found({ code: `${SNOMED}|` })).toEqual([ids.diabetes]);
      expect(new Set(await found({ code: `${LOINC}|`, type: 'Observation' }))).toEqual(
        new Set([ids.a2025, ids.a2023, ids.a2024, ids.glucose, ids.bp, ids.bpOld, ids.undated]),
      );
      expect(await found({ code: 'http://example.org/other|' })).toEqual([]);
    });

    it('filters by category given as a label or as a token, and refuses what can be no label', async () => {
      const byCategory = (category: string) =>
        api.gql<{ records: { items: Found[] } }>(
          `query($p: ID!, $c: String) { records(patientId: $p, category: $c) { items { id } } }`,
          { p: aliceId, c: category },
          alice,
        );
      const ids2 = async (category: string) =>
        new Set((await byCategory(category)).data!.records.items.map((r) => r.id));
      const vitals = new Set([ids.bp, ids.bpOld]);
      expect(await ids2('vital-signs')).toEqual(vitals);
      expect(
        await ids2('http://terminology.hl7.org/CodeSystem/observation-category|vital-signs'),
      ).toEqual(vitals);
      const bad = await byCategory('vital signs!');
      expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
      expect(bad.errors![0].extensions.field).toBe('category');
    });

    it('rejects a malformed token as BAD_USER_INPUT naming the code', async () => {
      for (const code of ['', '|', 'a|b|c', 'x'.repeat(513)]) {
        const res = await search({ code });
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors![0].extensions.field).toBe('code');
      }
    });

    it('finds a real Synthea observation by its own LOINC code', async () => {
      const synthea = corpusResource('synthea-Observation-1.json');
      delete synthea.subject;
      delete synthea.encounter;
      const id = await create(synthea);
      const coding = (synthea.code as { coding: { system: string; code: string }[] }).coding[0];
      const items = (
        await search({ code: `${coding.system}|${coding.code}` })
      ).data!.records.items.filter((r) => r.id === id);
      expect(items).toHaveLength(1);
      expect(items[0].integrity).toBe('VERIFIED');
      expect(items[0].effectiveAt).toBe('2011-10-14T23:37:54.000Z');
    });
  });

  describe('by clinical date', () => {
    it('exposes effectiveAt from effective[x], issued, onset, and else createdAt', async () => {
      const { items } = (await search({})).data!.records;
      const at = Object.fromEntries(items.map((r) => [r.id, r.effectiveAt]));
      expect(at[ids.a2024]).toBe('2024-06-01T08:30:00.000Z');
      expect(at[ids.a2023]).toBe('2023-01-10T00:00:00.000Z');
      expect(at[ids.bp]).toBe('2024-08-02T09:00:00.000Z');
      expect(at[ids.bpOld]).toBe('2019-05-01T00:00:00.000Z');
      expect(at[ids.diabetes]).toBe('2020-02-03T00:00:00.000Z');
      const { rows } = await api.db.query('SELECT created_at FROM records WHERE id = $1', [
        ids.undated,
      ]);
      expect(at[ids.undated]).toBe((rows[0].created_at as Date).toISOString());
    });

    it('bounds effectiveAt by since (inclusive) and until (exclusive)', async () => {
      const window = { since: '2024-01-01T00:00:00Z', until: '2025-01-01T00:00:00Z' };
      expect(await found({ code: HBA1C, ...window })).toEqual([ids.a2024]);
      expect(await found({ code: HBA1C, since: '2024-06-01T08:30:00Z' })).toEqual([
        ids.a2024,
        ids.a2025,
      ]);
      expect(await found({ code: HBA1C, until: '2024-06-01T08:30:00Z' })).toEqual([ids.a2023]);
      expect(new Set(await found(window))).toEqual(new Set([ids.a2024, ids.glucose, ids.bp]));
    });

    it('refuses since after until as BAD_USER_INPUT, and takes an empty window as empty', async () => {
      const res = await search({ since: '2025-01-01T00:00:00Z', until: '2024-01-01T00:00:00Z' });
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toMatch(/since is after until/);
      const at = '2024-06-01T00:00:00Z';
      expect(await found({ since: at, until: at })).toEqual([]);
    });
  });

  describe('what the index keeps at rest', () => {
    it('holds no clinical code in plaintext, only per-patient keyed digests', async () => {
      const bobHba1c = await create(hba1c('2025-01-01', 5.5), bob);
      const { rows } = await api.db.query(
        `SELECT id, code_digests, effective_at, row_to_json(r)::text AS whole
         FROM records r WHERE id = ANY($1::uuid[])`,
        [[ids.a2025, ids.a2024, bobHba1c]],
      );
      for (const row of rows) {
        expect(row.whole).not.toContain(HBA1C);
        expect(row.whole).not.toContain('loinc');
        expect(row.code_digests.length).toBeGreaterThan(0);
      }
      const digests = (id: string) =>
        new Set(
          (rows.find((r) => r.id === id)!.code_digests as Buffer[]).map((d) => d.toString('hex')),
        );
      // Equal codes are equal within one patient, and unlinkable across patients.
      expect(digests(ids.a2025)).toEqual(digests(ids.a2024));
      expect([...digests(bobHba1c)].some((d) => digests(ids.a2025).has(d))).toBe(false);
    });

    it('never serves a record the index was forged to point at', async () => {
      const { rows } = await api.db.query('SELECT code_digests FROM records WHERE id = $1', [
        ids.diabetes,
      ]);
      // A database writer copies the HbA1c digests onto the Condition row.
      await api.db.query(
        `UPDATE records SET code_digests = (SELECT code_digests FROM records WHERE id = $1)
         WHERE id = $2`,
        [ids.a2025, ids.diabetes],
      );
      try {
        expect(await found({ code: HBA1C })).not.toContain(ids.diabetes);
        const latest = await api.ok<{ latestObservations: Found[] }>(
          LATEST,
          { p: aliceId, codes: [HBA1C] },
          alice,
        );
        expect(latest.latestObservations.map((r) => r.id)).toEqual([ids.a2025]);
      } finally {
        await api.db.query('UPDATE records SET code_digests = $2 WHERE id = $1', [
          ids.diabetes,
          rows[0].code_digests,
        ]);
      }
    });

    it('fills in the index of rows written before search existed, at start-up', async () => {
      await api.db.query(
        `UPDATE records SET code_digests = '{}', effective_at = NULL, index_version = 0
         WHERE patient_id = $1`,
        [aliceId],
      );
      expect(await found({ code: HBA1C })).toEqual([]);
      await api.restart();
      expect(await found({ code: HBA1C })).toEqual([ids.a2024, ids.a2023, ids.a2025]);
      const { rows } = await api.db.query(
        'SELECT effective_at FROM records WHERE id = $1 AND index_version = $2',
        [ids.a2024, INDEX_VERSION],
      );
      expect((rows[0].effective_at as Date).toISOString()).toBe('2024-06-01T08:30:00.000Z');
    });

    it("dates HL7's Specimen, RiskAssessment and NutritionOrder examples, and re-indexes rows an older version dated wrong", async () => {
      const example = (file: string) => {
        const r = corpusResource(file);
        for (const owner of ['subject', 'patient', 'encounter', 'request', 'orderer']) {
          delete r[owner];
        }
        return create(r, bob);
      };
      const specimen = await example('hl7-Specimen-2.json');
      const risk = await example('hl7-RiskAssessment-2.json');
      const diet = await example('hl7-NutritionOrder-1.json');
      const inBob = async (vars: Record<string, unknown>) =>
        (await api.ok<{ records: { items: Found[] } }>(SEARCH, { p: bobId, ...vars }, bob)).records
          .items;
      const at = Object.fromEntries((await inBob({})).map((r) => [r.id, r.effectiveAt]));
      expect([at[specimen], at[risk], at[diet]]).toEqual([
        '2015-08-16T06:40:17.000Z',
        '2006-01-13T23:01:00.000Z',
        '2014-09-17T00:00:00.000Z',
      ]);
      const window = { since: '2006-01-01T00:00:00Z', until: '2016-01-01T00:00:00Z' };
      const inWindow = async () => new Set((await inBob(window)).map((r) => r.id));
      expect(await inWindow()).toEqual(new Set([specimen, risk, diet]));

      // As version 1 indexed them (by their creation, these types' dates unknown to it): a
      // date search misses them until the start-up re-indexes them.
      await api.db.query(
        `UPDATE records SET effective_at = created_at, index_version = 1
         WHERE id = ANY($1::uuid[])`,
        [[specimen, risk, diet]],
      );
      expect(await inWindow()).toEqual(new Set());
      await api.restart();
      expect(await inWindow()).toEqual(new Set([specimen, risk, diet]));
      const { rows } = await api.db.query(
        'SELECT DISTINCT index_version FROM records WHERE patient_id = $1',
        [bobId],
      );
      expect(rows).toEqual([{ index_version: INDEX_VERSION }]);
    });
  });

  describe('latest values as a clinician reads them', () => {
    const PANEL = '55284-4';
    const SYSTOLIC = '8480-6';
    const DIASTOLIC = '8462-4';
    let carol: string;
    let carolId: string;
    const bpPanel = (at: string, systolic: number, diastolic: number) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: LOINC, code: PANEL }] },
      effectiveDateTime: at,
      component: [
        {
          code: { coding: [{ system: LOINC, code: SYSTOLIC }] },
          valueQuantity: { value: systolic, unit: 'mm[Hg]' },
        },
        {
          code: { coding: [{ system: LOINC, code: DIASTOLIC }] },
          valueQuantity: { value: diastolic, unit: 'mm[Hg]' },
        },
      ],
    });
    const latest = async (codesAsked: string[]) =>
      (
        await api.ok<{ latestObservations: Found[] }>(
          LATEST,
          { p: carolId, codes: codesAsked },
          carol,
        )
      ).latestObservations;

    beforeAll(async () => {
      carol = await api.token('carol', 'PATIENT');
      carolId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, carol))
        .registerPatient.id;
    });

    it('passes over an Observation entered in error, cancelled or not yet resulted, for the newest with a result', async () => {
      const final = await create(hba1c('2024-01-01', 6.0), carol);
      await create({ ...hba1c('2025-01-01', 13.0), status: 'entered-in-error' }, carol);
      await create({ ...hba1c('2025-02-01', 12.0), status: 'cancelled' }, carol);
      await create({ ...hba1c('2025-03-01', 11.0), status: 'registered' }, carol);
      expect((await latest([HBA1C])).map((r) => r.id)).toEqual([final]);
      // Amended after a correction: it is a result again, and the newest.
      const amended = await create({ ...hba1c('2025-04-01', 6.2), status: 'amended' }, carol);
      expect((await latest([HBA1C])).map((r) => r.id)).toEqual([amended]);
      // Every one voided: no latest value rather than a voided one.
      await create({ ...observation('2093-3'), status: 'entered-in-error' }, carol);
      expect(await latest(['2093-3'])).toEqual([]);
    });

    it("finds a blood pressure recorded as a panel's components by the systolic or diastolic code, once", async () => {
      await create(bpPanel('2023-05-05T10:00:00Z', 150, 95), carol);
      const newest = await create(bpPanel('2024-05-05T10:00:00Z', 128, 82), carol);
      const single = await create(
        { ...vitalSign(SYSTOLIC, 119), effectiveDateTime: '2022-01-01' },
        carol,
      );
      expect((await latest([SYSTOLIC, DIASTOLIC])).map((r) => r.id)).toEqual([newest]);
      expect((await latest([`${LOINC}|${DIASTOLIC}`])).map((r) => r.id)).toEqual([newest]);
      // Search by code stays FHIR's `code`: the main code only.
      const byCode = await api.ok<{ records: { items: Found[] } }>(
        SEARCH,
        { p: carolId, code: SYSTOLIC },
        carol,
      );
      expect(byCode.records.items.map((r) => r.id)).toEqual([single]);
    });

    it('dates an Observation by the end of a period without a start, not by when it was stored', async () => {
      const ended = await create(
        { ...observation('39156-5', 31.2, 'kg/m2'), effectivePeriod: { end: '2016-01-01' } },
        carol,
      );
      const stored = await create(
        { ...observation('39156-5', 29.0, 'kg/m2'), effectiveDateTime: '2018-06-01' },
        carol,
      );
      expect((await latest(['39156-5'])).map((r) => r.id)).toEqual([stored]);
      const window = await api.ok<{ records: { items: Found[] } }>(
        SEARCH,
        {
          p: carolId,
          code: '39156-5',
          since: '2015-01-01T00:00:00Z',
          until: '2017-01-01T00:00:00Z',
        },
        carol,
      );
      expect(window.records.items.map((r) => [r.id, r.effectiveAt])).toEqual([
        [ended, '2016-01-01T00:00:00.000Z'],
      ]);
    });

    it('re-indexes rows of index version 2 at start-up: components and system| found, periods dated by their end', async () => {
      const panel = await create(bpPanel('2021-03-03', 140, 90), carol);
      const ended = await create(
        { ...observation('29463-7', 80, 'kg'), effectivePeriod: { end: '2010-01-01' } },
        carol,
      );
      // As version 2 left them: main codes only (here none), a period's end unread.
      await api.db.query(
        `UPDATE records SET code_digests = '{}', effective_at = created_at, index_version = 2
         WHERE id = ANY($1::uuid[])`,
        [[panel, ended]],
      );
      const inWindow = async () =>
        (
          await api.ok<{ records: { items: Found[] } }>(
            SEARCH,
            { p: carolId, code: `${LOINC}|`, until: '2011-01-01T00:00:00Z' },
            carol,
          )
        ).records.items.map((r) => r.id);
      expect(await inWindow()).toEqual([]);
      await api.restart();
      expect(await inWindow()).toEqual([ended]);
      expect((await latest([SYSTOLIC])).map((r) => r.id)).not.toContain(ended);
      const { rows } = await api.db.query(
        'SELECT index_version FROM records WHERE id = ANY($1::uuid[])',
        [[panel, ended]],
      );
      expect(rows).toEqual([{ index_version: INDEX_VERSION }, { index_version: INDEX_VERSION }]);
      const found2021 = await api.ok<{ records: { items: Found[] } }>(
        SEARCH,
        { p: carolId, code: PANEL, since: '2021-01-01T00:00:00Z', until: '2022-01-01T00:00:00Z' },
        carol,
      );
      expect(found2021.records.items.map((r) => r.id)).toEqual([panel]);
    });
  });

  describe('consent decides first', () => {
    it('answers CONSENT_REQUIRED to a clinician without a grant, for search and latest values', async () => {
      const dr = await api.token('dr-none', 'CLINICIAN');
      expect(codes(await search({ code: HBA1C }, dr))).toEqual(['CONSENT_REQUIRED']);
      expect(codes(await api.gql(LATEST, { p: aliceId, codes: [HBA1C] }, dr))).toEqual([
        'CONSENT_REQUIRED',
      ]);
    });

    it('answers CONSENT_REQUIRED, not INTERNAL, to a clinician naming a patient id that is no UUID', async () => {
      const dr = await api.token('dr-none', 'CLINICIAN');
      for (const p of ['x', aliceId.slice(0, 20), `${aliceId}x`]) {
        expect(codes(await api.gql(SEARCH, { p }, dr))).toEqual(['CONSENT_REQUIRED']);
        expect(codes(await api.gql(LATEST, { p, codes: [HBA1C] }, dr))).toEqual([
          'CONSENT_REQUIRED',
        ]);
      }
    });

    it('never surfaces a Condition to a clinician whose grant covers Observations only', async () => {
      const dr = await api.token('dr-obs', 'CLINICIAN');
      await api.grantRead(alice, 'dr-obs', { resourceTypes: ['Observation'] });
      expect(await found({ code: `${SNOMED}|44054006` }, dr)).toEqual([]);
      expect(await found({ code: HBA1C }, dr)).toHaveLength(3);
      const panel = await api.ok<{ latestObservations: Found[] }>(
        LATEST,
        { p: aliceId, codes: ['44054006', HBA1C] },
        dr,
      );
      expect(panel.latestObservations.map((r) => r.id)).toEqual([ids.a2025]);
    });

    it('gives a clinician with a Condition-only grant no Observation as a latest value', async () => {
      const dr = await api.token('dr-cond', 'CLINICIAN');
      await api.grantRead(alice, 'dr-cond', { resourceTypes: ['Condition'] });
      const panel = await api.ok<{ latestObservations: Found[] }>(
        LATEST,
        { p: aliceId, codes: [HBA1C, GLUCOSE] },
        dr,
      );
      expect(panel.latestObservations).toEqual([]);
    });

    it('limits latest values to the categories granted', async () => {
      const dr = await api.token('dr-vitals', 'CLINICIAN');
      await api.grantRead(alice, 'dr-vitals', { categories: ['vital-signs'] });
      const panel = await api.ok<{ latestObservations: Found[] }>(
        LATEST,
        { p: aliceId, codes: [HBA1C, '8480-6'] },
        dr,
      );
      expect(panel.latestObservations.map((r) => r.id)).toEqual([ids.bp]);
    });
  });

  describe('latestObservations', () => {
    it('answers the newest Observation by clinical date for each code, in the order asked', async () => {
      const { latestObservations } = await api.ok<{ latestObservations: Found[] }>(
        LATEST,
        { p: aliceId, codes: [`${LOINC}|${GLUCOSE}`, HBA1C, '8480-6', 'no-such-code'] },
        alice,
      );
      expect(latestObservations.map((r) => r.id)).toEqual([ids.glucose, ids.a2025, ids.bp]);
      expect(latestObservations.every((r) => r.integrity === 'VERIFIED')).toBe(true);
      expect(latestObservations[1].effectiveAt).toBe('2025-03-01T08:00:00.000Z');
    });

    it('lists a record newest for two codes once, and answers nothing for no codes', async () => {
      const { latestObservations } = await api.ok<{ latestObservations: Found[] }>(
        LATEST,
        { p: aliceId, codes: [HBA1C, `${LOINC}|${HBA1C}`] },
        alice,
      );
      expect(latestObservations.map((r) => r.id)).toEqual([ids.a2025]);
      const none = await api.ok<{ latestObservations: Found[] }>(
        LATEST,
        { p: aliceId, codes: [] },
        alice,
      );
      expect(none.latestObservations).toEqual([]);
    });

    it('rejects a malformed token or too many codes as BAD_USER_INPUT', async () => {
      const bad = await api.gql(LATEST, { p: aliceId, codes: [HBA1C, 'a|b|c'] }, alice);
      expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
      expect(bad.errors![0].extensions.field).toBe('codes[1]');
      const many = Array.from({ length: 51 }, (_, i) => `c${i}`);
      expect(codes(await api.gql(LATEST, { p: aliceId, codes: many }, alice))).toEqual([
        'BAD_USER_INPUT',
      ]);
    });

    it("answers nothing of another patient's to a patient", async () => {
      expect(codes(await api.gql(LATEST, { p: bobId, codes: [HBA1C] }, alice))).toEqual([
        'CONSENT_REQUIRED',
      ]);
    });
  });
});
