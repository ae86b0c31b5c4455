// importBundle, exportMyData and ConsentGrant.fhir over HTTP: real Synthea and HL7 resources
// as one transaction bundle, all or nothing, references rewritten, skipped types counted, a
// clinician's import under a WRITE grant, and an export imported into a fresh instance.
import { randomUUID } from 'node:crypto';
import { RecordAnchoring } from '../src/records';
import { EXPORT_CHUNK } from '../src/records/export/export.service';
import { RecordOpener } from '../src/records/record-opener';
import { fhirIssues } from '../src/records/fhir/index';
import { corpusBundle, largeBundle } from './helpers/fhir-bundle';
import { codes, TestApi } from './helpers/test-api';
import { observation, vitalSign } from './helpers/fhir';
import { RECORD_CATEGORY_SYSTEM } from '../src/consent';

const REGISTER = `mutation { registerPatient { id } }`;
const IMPORT = `mutation($b: JSON!, $p: ID) { importBundle(bundle: $b, patientId: $p) {
  created updated unchanged skipped skippedTypes recordIds updatedIds unchangedIds } }`;
const HISTORY = `query($id: ID!) { recordHistory(id: $id) { version resource integrity } }`;
const EXPORT = `{ exportMyData }`;
const ONE = `query($id: ID!) { record(id: $id) { id resourceType resource integrity } }`;

type Report = {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  skippedTypes: string[];
  recordIds: string[];
  updatedIds: string[];
  unchangedIds: string[];
};
type Rec = {
  id: string;
  resourceType: string;
  resource: Record<string, unknown>;
  integrity: string;
};

async function patient(api: TestApi, sub: string): Promise<{ token: string; id: string }> {
  const token = await api.token(sub, 'PATIENT');
  const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
    REGISTER,
    {},
    token,
  );
  return { token, id: registerPatient.id };
}

const count = async (api: TestApi, patientId: string) =>
  Number(
    (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [patientId])).rows[0]
      .count,
  );

/** A resource with its ids, server meta and references to records replaced by their type. */
function comparable(resource: Record<string, unknown>, recordIds: Set<string>): string {
  const copy = structuredClone(resource);
  delete copy.id;
  const meta = copy.meta as Record<string, unknown> | undefined;
  if (meta) {
    delete meta.versionId;
    delete meta.lastUpdated;
    if (Object.keys(meta).length === 0) delete copy.meta;
  }
  return JSON.stringify(copy).replace(
    /"reference":"([A-Za-z]+)\/([0-9a-f-]{36})"/g,
    (m, type: string, id: string) =>
      recordIds.has(id) || type === 'Patient' ? `"reference":"${type}/*"` : m,
  );
}

/** The references a resource holds, as written. */
const refsOf = (r: unknown) =>
  [...JSON.stringify(r).matchAll(/"reference":"([^"]+)"/g)].map((m) => m[1]);

/**
 * The first entry (past the Patient and the two skipped ones) that refers to other imported
 * entries (DiagnosticReport.result, Condition.evidence…), and each entry's index by fullUrl.
 */
function referringEntry(bundle: ReturnType<typeof corpusBundle>) {
  const urls = new Map(bundle.entry.map((e, i) => [e.fullUrl!, i]));
  const source = bundle.entry.findIndex(
    (e, i) => i > 2 && refsOf(e.resource).some((r) => (urls.get(r) ?? 0) > 2),
  );
  expect(source).toBeGreaterThan(2);
  return { urls, source };
}

/** Resolves once the record is anchored (the import answers before the ledger does). */
async function anchored(api: TestApi, recordId: string): Promise<void> {
  const events = api.server.app.get(RecordAnchoring).events;
  await new Promise<void>((resolve, reject) => {
    const onAnchored = (id: string) => {
      if (id !== recordId) return;
      events.off('anchored', onAnchored);
      resolve();
    };
    events.on('anchored', onAnchored);
    api.db.query('SELECT anchor_state FROM records WHERE id = $1', [recordId]).then(({ rows }) => {
      if (rows[0]?.anchor_state === 'ANCHORED') onAnchored(recordId);
    }, reject);
  });
}

describe('importing and exporting FHIR bundles', () => {
  let api: TestApi;
  let alice: { token: string; id: string };

  beforeAll(async () => {
    api = await TestApi.start();
    alice = await patient(api, 'alice');
  });
  afterAll(() => api?.stop());

  const importAs = (token: string, bundle: unknown, patientId?: string) =>
    api.gql<{ importBundle: Report }>(IMPORT, { b: bundle, p: patientId ?? null }, token);

  describe('a transaction bundle of real Synthea and HL7 resources', () => {
    let bundle: ReturnType<typeof corpusBundle>;
    let report: Report;

    beforeAll(async () => {
      bundle = corpusBundle();
      const res = await importAs(alice.token, bundle);
      expect(res.errors).toBeUndefined();
      report = res.data!.importBundle;
    });

    it('stores every record and the Patient, and counts what it skipped', async () => {
      expect(report.created).toBe(bundle.entry.length - 2);
      expect(report.skipped).toBe(2);
      expect(report.skippedTypes).toEqual(['Organization', 'Practitioner']);
      expect(new Set(report.recordIds).size).toBe(report.created);
      expect(await count(api, alice.id)).toBe(report.created);
    });

    it("maps the bundle's Patient onto the owner and names the owner in every record", async () => {
      const [patientRecord] = report.recordIds;
      const { record } = await api.ok<{ record: Rec }>(ONE, { id: patientRecord }, alice.token);
      expect(record.resourceType).toBe('Patient');
      expect(record.resource.id).toBe(alice.id);
      const { record: obs } = await api.ok<{ record: Rec }>(
        ONE,
        { id: report.recordIds[200] },
        alice.token,
      );
      const owner = (obs.resource.subject ?? obs.resource.patient) as { reference: string };
      expect(owner.reference).toBe(`Patient/${alice.id}`);
    });

    it('rewrites references between imported entries to the stored records, anchored', async () => {
      // Entry i (i ≥ 3) is record i - 2: entry 0 (the Patient) is record 0, 1 and 2 were skipped.
      const recordOf = (entry: number) => report.recordIds[entry === 0 ? 0 : entry - 2];
      const { urls, source } = referringEntry(bundle);
      await anchored(api, recordOf(source));
      const { record } = await api.ok<{ record: Rec }>(ONE, { id: recordOf(source) }, alice.token);
      expect(record.integrity).toBe('VERIFIED');
      const refs = [...JSON.stringify(record.resource).matchAll(/"reference":"([^"]+)"/g)].map(
        (m) => m[1],
      );
      const inBundle = [
        ...JSON.stringify(bundle.entry[source].resource).matchAll(/"reference":"([^"]+)"/g),
      ]
        .map((m) => m[1])
        .filter((r) => urls.has(r) && urls.get(r)! > 2);
      expect(inBundle.length).toBeGreaterThan(0);
      for (const ref of inBundle) {
        const target = urls.get(ref)!;
        expect(refs).toContain(`${bundle.entry[target].resource.resourceType}/${recordOf(target)}`);
        expect(refs).not.toContain(ref);
      }
    });
    it('indexes what it imports: an imported Observation is found by its code and date at once', async () => {
      const i = bundle.entry.findIndex(
        (e, j) =>
          j > 2 &&
          e.resource.resourceType === 'Observation' &&
          (e.resource.code as { coding?: { system?: string; code?: string }[] })?.coding?.[0]?.code,
      );
      expect(i).toBeGreaterThan(2);
      const coding = (e: Record<string, unknown>) =>
        (e.code as { coding: { system?: string; code: string }[] }).coding[0];
      const { system, code } = coding(bundle.entry[i].resource);
      const { records } = await api.ok<{ records: { items: { id: string }[] } }>(
        `query($p: ID!, $c: String!) { records(patientId: $p, code: $c, first: 100) { items { id } } }`,
        { p: alice.id, c: system ? `${system}|${code}` : code },
        alice.token,
      );
      expect(records.items.map((r) => r.id)).toContain(report.recordIds[i - 2]);
    });

    it('lists what it imported newest first by clinical date, not in the random order of ids', async () => {
      const { records } = await api.ok<{
        records: { items: { effectiveAt: string; createdAt: string }[] };
      }>(
        `query($p: ID!) { records(patientId: $p, first: 30) { items { effectiveAt createdAt } } }`,
        { p: alice.id },
        alice.token,
      );
      const dates = records.items.map((r) => Date.parse(r.effectiveAt));
      expect(dates).toEqual([...dates].sort((a, b) => b - a));
      // Stored a millisecond apart: each has its own place in the listing.
      expect(new Set(records.items.map((r) => r.createdAt)).size).toBe(records.items.length);
      // The newest clinical dates of the bundle, not a sample of them.
      const { rows } = await api.db.query(
        `SELECT max(effective_at) AS newest FROM records WHERE patient_id = $1`,
        [alice.id],
      );
      expect(dates[0]).toBe((rows[0].newest as Date).getTime());
    });
  });

  describe('all or nothing', () => {
    it('rejects a bundle with one invalid entry, naming it, and writes nothing', async () => {
      const bob = await patient(api, 'bob');
      const bundle = corpusBundle();
      bundle.entry[12].resource.status = 'not-a-status-Jane-Q-Public';
      const res = await importAs(bob.token, bundle);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toContain('entry[12]');
      expect(res.errors![0].message).not.toContain('Jane-Q-Public');
      expect(res.errors![0].extensions.field).toBe('bundle.entry[12].resource.status');
      expect(await count(api, bob.id)).toBe(0);
      const keys = await api.db.query('SELECT count(*) FROM data_keys WHERE patient_id = $1', [
        bob.id,
      ]);
      expect(Number(keys.rows[0].count)).toBe(0);
    });

    it('refuses, as createRecord does, an entry whose category code is no label', async () => {
      const carol = await patient(api, 'carol');
      const bundle = corpusBundle();
      const i = bundle.entry.findIndex(
        (e, j) =>
          j > 2 &&
          e.resource.resourceType === 'Observation' &&
          Array.isArray(e.resource.category) &&
          e.resource.category.length > 0,
      );
      expect(i).toBeGreaterThan(2);
      bundle.entry[i].resource.category = [
        // A valid FHIR code (one inner space), but no label: extensible binding, so FHIR allows it.
        { coding: [{ system: 'http://example.org/c', code: 'vital signs' }] },
      ];
      const res = await importAs(carol.token, bundle);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].message).toContain(`entry[${i}]`);
      expect(res.errors![0].extensions.field).toBe(`bundle.entry[${i}].resource.category`);
      expect(await count(api, carol.id)).toBe(0);
    });

    it('refuses an entry that is not a creation, and a bundle of another type', async () => {
      const bundle = corpusBundle();
      bundle.entry[4].request = { method: 'DELETE', url: 'Observation/x' };
      const res = await importAs(alice.token, bundle);
      expect(res.errors?.[0].extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'bundle.entry[4].request.method',
      });
      const other = await importAs(alice.token, { ...corpusBundle(), type: 'searchset' });
      expect(other.errors?.[0].extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'bundle.type',
      });
    });
  });

  describe('who may import', () => {
    it("refuses a patient importing into another patient's records", async () => {
      const carol = await patient(api, 'carol');
      const res = await importAs(alice.token, corpusBundle(), carol.id);
      expect(codes(res)).toEqual(['CONSENT_REQUIRED']);
      expect(await count(api, carol.id)).toBe(0);
    });

    it('refuses a bundle whose Patient is someone else by birth date or sex, and takes one that agrees', async () => {
      // Alice's chart holds the corpus bundle's Patient: female, born 1970-04-01.
      const small = (person: Record<string, unknown>) => ({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          {
            fullUrl: 'urn:uuid:3f1c2a9e-0d4b-4b8e-9c1a-7e6d5c4b3a21',
            resource: {
              resourceType: 'Patient',
              id: '3f1c2a9e-0d4b-4b8e-9c1a-7e6d5c4b3a21',
              ...person,
            },
          },
          {
            fullUrl: 'urn:uuid:8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d',
            resource: {
              resourceType: 'Observation',
              status: 'final',
              code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
              subject: { reference: 'urn:uuid:3f1c2a9e-0d4b-4b8e-9c1a-7e6d5c4b3a21' },
            },
          },
        ],
      });
      const before = await count(api, alice.id);
      for (const someoneElse of [
        { gender: 'male', birthDate: '1956-08-03' },
        { gender: 'female', birthDate: '1989-08-29' },
        { gender: 'male' },
      ]) {
        const res = await importAs(alice.token, small(someoneElse));
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors![0].message).toContain('entry[0]');
        expect(res.errors![0].message).not.toMatch(/1970|1956|1989|female|male/);
      }
      expect(await count(api, alice.id)).toBe(before);
      // The same person, said less precisely or with nothing to compare: imported.
      for (const same of [{ birthDate: '1970-04' }, { gender: 'unknown' }, {}]) {
        const res = await importAs(alice.token, small(same));
        expect(res.errors).toBeUndefined();
        // The same entries each time: the Patient changes (a new version), the Observation not.
        const { created, updated, unchanged } = res.data!.importBundle;
        expect([created, updated, unchanged]).toEqual(same.birthDate ? [2, 0, 0] : [0, 1, 1]);
      }
      // A clinician who may write but not read a patient's records learns nothing of her
      // stored Patient record from the answer: a wrong guess and a right one are answered alike.
      const pia = await patient(api, 'pia');
      const own = await importAs(pia.token, small({ gender: 'female', birthDate: '1970-04-12' }));
      expect(own.errors).toBeUndefined();
      const writer = await api.token('dr-write-only', 'CLINICIAN');
      await api.grantRead(pia.token, 'dr-write-only', { actions: ['WRITE'] });
      const answers = [];
      for (const guess of [{ gender: 'male', birthDate: '1956-08-03' }, { birthDate: '1970-04' }]) {
        const res = await importAs(writer, small(guess), pia.id);
        answers.push(res.errors ? codes(res) : 'imported');
      }
      expect(answers[0]).toEqual(answers[1]);
    });

    it("takes a chart's own Patient back when its Patient records disagree, and holds any other Patient to them all", async () => {
      const onePatient = (uuid: string, person: Record<string, unknown>) => ({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          {
            fullUrl: `urn:uuid:${uuid}`,
            resource: { resourceType: 'Patient', name: [{ family: 'Hale' }], ...person },
          },
        ],
      });
      const first = onePatient('0b1e6a52-7c1d-4c8e-9a55-3f0e6d2b7a01', {
        gender: 'male',
        birthDate: '1970-01-01',
      });
      const report = async (token: string, bundle: unknown, patientId?: string) => {
        const res = await importAs(token, bundle, patientId);
        expect(res.errors).toBeUndefined();
        const { created, updated, unchanged } = res.data!.importBundle;
        return [created, updated, unchanged];
      };
      const hal = await patient(api, 'hal');
      expect(await report(hal.token, first)).toEqual([1, 0, 0]);
      // A clinician who may write but not read files a Patient that disagrees: not compared
      // with what they may not read, so taken, and the chart's Patient records now disagree.
      await api.grantRead(hal.token, 'dr-hale-writer', { actions: ['WRITE'] });
      const writer = await api.token('dr-hale-writer', 'CLINICIAN');
      const wrong = onePatient('0b1e6a52-7c1d-4c8e-9a55-3f0e6d2b7a02', { birthDate: '1980-01-01' });
      expect(await report(writer, wrong, hal.id)).toEqual([1, 0, 0]);

      // The first bundle again, and the chart's own export: nothing new, so nothing refused.
      expect(await report(hal.token, first)).toEqual([0, 0, 1]);
      const { exportMyData } = await api.ok<{ exportMyData: unknown }>(EXPORT, {}, hal.token);
      expect(await report(hal.token, exportMyData)).toEqual([0, 0, 2]);

      // A Patient new to the chart is held to every one of its Patient records, until the
      // patient corrects the wrong one.
      const another = onePatient('0b1e6a52-7c1d-4c8e-9a55-3f0e6d2b7a03', {
        gender: 'male',
        birthDate: '1970-01-01',
      });
      const refused = await importAs(hal.token, another);
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      expect(refused.errors![0].message).toContain('differs from this patient');
      // A Patient already here whose birth date or sex changes is new in what counts.
      const changed = onePatient('0b1e6a52-7c1d-4c8e-9a55-3f0e6d2b7a01', {
        gender: 'male',
        birthDate: '1956-08-03',
      });
      expect(codes(await importAs(hal.token, changed))).toEqual(['BAD_USER_INPUT']);

      // A blank Patient agrees with everyone, but filling it in later is compared again.
      const bea = await patient(api, 'bea');
      expect(
        await report(
          bea.token,
          onePatient('5d2c9e10-4b7a-4f3e-8c21-9a6b0e1f2c01', {
            gender: 'female',
            birthDate: '1975-05-05',
          }),
        ),
      ).toEqual([1, 0, 0]);
      const blank = '5d2c9e10-4b7a-4f3e-8c21-9a6b0e1f2c02';
      expect(await report(bea.token, onePatient(blank, {}))).toEqual([1, 0, 0]);
      const filled = await importAs(bea.token, onePatient(blank, { gender: 'male' }));
      expect(codes(filled)).toEqual(['BAD_USER_INPUT']);

      // Two new Patient entries of one bundle that disagree: one person's data, or none.
      const cy = await patient(api, 'cy');
      const two = {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          { resource: { resourceType: 'Patient', id: 'p1', birthDate: '1970-01-01' } },
          { resource: { resourceType: 'Patient', id: 'p1', birthDate: '1985-06-06' } },
        ],
      };
      const both = await importAs(cy.token, two);
      expect(codes(both)).toEqual(['BAD_USER_INPUT']);
      expect(both.errors![0].message).toMatch(
        /^entry\[1\] is a Patient with another birth date or sex than entry\[0\]'s/,
      );
      expect(await count(api, cy.id)).toBe(0);
    });

    it("tells no one whether a bundle's patient is a patient here, and refuses a clinician's copy of one they may read", async () => {
      const nora = await patient(api, 'nora');
      const observation = (subject: string) => ({
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
        subject: { reference: subject },
      });
      const bundle = (subject: string) => ({
        resourceType: 'Bundle',
        type: 'transaction',
        // Other entries every time: importing the same ones again would store nothing twice.
        entry: [0, 1].map(() => ({
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: observation(subject),
          request: { method: 'POST', url: 'Observation' },
        })),
      });
      // A patient of this server and an id no one holds are the same to a patient: a source
      // system's id, taken as nora's (an answer that differed would tell who is a patient here).
      for (const named of [alice.id, randomUUID()]) {
        const res = await importAs(nora.token, bundle(`Patient/${named}`));
        expect(res.errors).toBeUndefined();
        expect(res.data!.importBundle.created).toBe(2);
      }
      expect(await count(api, nora.id)).toBe(4);
      // A clinician who may read olga and write to nora may not file olga's records in
      // nora's chart: refused (they know olga is a patient here), with her Patient entry too.
      const dr = await api.token('dr-copy', 'CLINICIAN');
      const olga = await patient(api, 'olga');
      await api.grantRead(olga.token, 'dr-copy');
      await api.grantRead(nora.token, 'dr-copy', { actions: ['READ', 'WRITE'] });
      const copied = await importAs(dr, bundle(`Patient/${olga.id}`), nora.id);
      expect(codes(copied)).toEqual(['BAD_USER_INPUT']);
      expect(copied.errors![0].message).toMatch(/entry\[0\] names another patient/);
      const withPatient = bundle(`Patient/${olga.id}`);
      withPatient.entry.unshift({
        fullUrl: 'urn:uuid:0b7c1a52-9d4e-4f3a-8c2b-5e6d7f8a9b0f',
        resource: { resourceType: 'Patient', id: olga.id } as never,
        request: { method: 'POST', url: 'Patient' },
      });
      const adopted = await importAs(dr, withPatient, nora.id);
      expect(codes(adopted)).toEqual(['BAD_USER_INPUT']);
      expect(adopted.errors![0].message).toMatch(/entry\[0\] names another patient/);
      expect(await count(api, nora.id)).toBe(4);
      // Records naming two patients: the message says so.
      const two = bundle('Patient/synthea-1');
      two.entry[1].resource.subject.reference = 'Patient/synthea-2';
      const mixed = await importAs(nora.token, two);
      expect(codes(mixed)).toEqual(['BAD_USER_INPUT']);
      expect(mixed.errors![0].message).toMatch(
        /^entry\[1\] names another patient than entry\[0\] does \(2 patients in all\)/,
      );
      // A patient of another system named the same way is the bundle's own: taken as nora.
      const own = await importAs(nora.token, bundle('Patient/synthea-123'));
      expect(own.errors).toBeUndefined();
      expect(await count(api, nora.id)).toBe(6);
    });

    it('takes back a patient’s own export after erasure, under their new profile', async () => {
      const ezra = await patient(api, 'ezra');
      for (const value of [5.1, 6.2]) {
        await api.ok(
          'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }',
          {
            r: {
              resourceType: 'Observation',
              status: 'final',
              code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
              valueQuantity: { value, unit: 'mmol/L' },
            },
          },
          ezra.token,
        );
      }
      const { exportMyData: bundle } = await api.ok<{ exportMyData: unknown }>(
        EXPORT,
        {},
        ezra.token,
      );
      await api.ok('mutation { eraseMyData(confirm: true) }', {}, ezra.token);
      const again = await patient(api, 'ezra');
      expect(again.id).not.toBe(ezra.id);
      // The export names the erased profile, which names no one's records any more.
      const res = await importAs(again.token, bundle);
      expect(res.errors).toBeUndefined();
      expect(await count(api, again.id)).toBe(2);
    });

    it('lets a clinician import under a WRITE grant that covers every entry, and logs it', async () => {
      const dave = await patient(api, 'dave');
      const dr = await api.token('dr-import', 'CLINICIAN');
      const observations = corpusBundle();
      observations.entry = observations.entry.filter(
        (e, i) => i < 3 || e.resource.resourceType === 'Observation',
      );
      expect(codes(await importAs(dr, observations, dave.id))).toEqual(['CONSENT_REQUIRED']);
      await api.grantRead(dave.token, 'dr-import', {
        actions: ['READ', 'WRITE'],
        resourceTypes: ['Observation'],
      });
      // The Patient entry is not an Observation: the grant does not cover it, nothing is written.
      const refused = await importAs(dr, observations, dave.id);
      expect(codes(refused)).toEqual(['CONSENT_REQUIRED']);
      expect(refused.errors![0].message).toMatch(
        /^entry\[0\]: your grants do not cover Patient records/,
      );
      expect(await count(api, dave.id)).toBe(0);
      observations.entry.shift();
      const res = await importAs(dr, observations, dave.id);
      expect(res.errors).toBeUndefined();
      expect(res.data!.importBundle.created).toBe(observations.entry.length - 2);
      const log = await api.db.query(
        `SELECT action, decision, consent_id FROM access_events WHERE patient_id = $1 AND actor_id = 'dr-import' ORDER BY seq`,
        [dave.id],
      );
      // Refused without a grant, refused for the entry the grant does not cover, permitted.
      expect(log.rows.map((r) => `${r.action} ${r.decision}`)).toEqual([
        'WRITE DENY',
        'WRITE DENY',
        'WRITE PERMIT',
      ]);
      expect(log.rows[2].consent_id).toBeTruthy();
      // The import's PERMIT is justified by the WRITE grant the ledger holds.
      const { verifyAccessLog } = await api.ok<{
        verifyAccessLog: { ok: boolean; problems: string[]; permitsJustified: number };
      }>(
        'query($p: ID!) { verifyAccessLog(patientId: $p) { ok problems permitsJustified } }',
        { p: dave.id },
        dave.token,
      );
      expect(verifyAccessLog).toMatchObject({ ok: true, problems: [] });
    });
  });

  describe('importing again', () => {
    /** A collection bundle of one entry. */
    const oneEntry = (fullUrl: string, resource: Record<string, unknown>) => ({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ fullUrl, resource }],
    });
    /** A lab result of the patient's, filed by a category tag if `tag` is given. */
    const labResult = (patientId: string, value = 5.4, tag?: string) => ({
      ...observation('2345-7', value),
      ...(tag ? { meta: { tag: [{ system: RECORD_CATEGORY_SYSTEM, code: tag }] } } : {}),
      subject: { reference: `Patient/${patientId}` },
    });

    let erin: { token: string; id: string };
    let bundle: ReturnType<typeof corpusBundle>;
    let first: Report;
    /** The record the second test amends. */
    let amended: string;

    beforeAll(async () => {
      erin = await patient(api, 'gwen');
      bundle = corpusBundle();
      const res = await importAs(erin.token, bundle);
      expect(res.errors).toBeUndefined();
      first = res.data!.importBundle;
    });

    it('finds the record an entry made however its URL fullUrl is spelt again', async () => {
      const hana = await patient(api, 'hana');
      const res = await importAs(
        hana.token,
        oneEntry('https://lab.example.org/fhir/Observation/g1', labResult(hana.id, 6.1)),
      );
      expect(res.errors).toBeUndefined();
      const [id] = res.data!.importBundle.recordIds;
      for (const spelt of [
        'https://LAB.example.org/fhir/Observation/g1',
        'https://lab.example.org:443/fhir/Observation/g1/',
        'https://lab.example.org/fhir/Observation/g1/_history/2',
      ]) {
        const again = await importAs(hana.token, oneEntry(spelt, labResult(hana.id, 6.1)));
        expect(again.errors).toBeUndefined();
        expect(again.data!.importBundle).toMatchObject({ created: 0, unchangedIds: [id] });
      }
      // Two spellings of one fullUrl in one bundle are one entry given twice.
      const twice = await importAs(hana.token, {
        ...oneEntry('https://lab.example.org/fhir/Observation/g2', labResult(hana.id)),
        entry: [
          'https://lab.example.org/fhir/Observation/g2',
          'https://LAB.example.org/fhir/Observation/g2',
        ].map((fullUrl) => ({ fullUrl, resource: labResult(hana.id) })),
      });
      expect(codes(twice)).toEqual(['BAD_USER_INPUT']);
      expect(twice.errors![0].message).toContain('entry[1]');
    });

    it('stores nothing twice: the same bundle again leaves every record as it is', async () => {
      const versions = await api.db.query(
        'SELECT count(*) FROM record_versions WHERE patient_id = $1',
        [erin.id],
      );
      const res = await importAs(erin.token, bundle);
      expect(res.errors).toBeUndefined();
      expect(res.data!.importBundle).toMatchObject({
        created: 0,
        updated: 0,
        unchanged: first.created,
        skipped: 2,
        recordIds: [],
        updatedIds: [],
      });
      // The records the first import made, in bundle order, found again.
      expect(res.data!.importBundle.unchangedIds).toEqual(first.recordIds);
      expect(await count(api, erin.id)).toBe(first.created);
      expect(
        await api.db.query('SELECT count(*) FROM record_versions WHERE patient_id = $1', [erin.id]),
      ).toMatchObject({ rows: versions.rows });
    });

    it('stores a changed entry as a new version of its record, and a new entry as a record', async () => {
      const newer = structuredClone(bundle);
      const i = newer.entry.findIndex(
        (e) => e.resource.resourceType === 'Observation' && 'valueQuantity' in e.resource,
      );
      const quantity = newer.entry[i].resource.valueQuantity as { value: number };
      quantity.value += 1;
      newer.entry.push({
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
          subject: { reference: newer.entry[0].fullUrl },
          valueQuantity: {
            value: 61,
            unit: '/min',
            system: 'http://unitsofmeasure.org',
            code: '/min',
          },
        },
        request: { method: 'POST', url: 'Observation' },
      });
      const res = await importAs(erin.token, newer);
      expect(res.errors).toBeUndefined();
      const report = res.data!.importBundle;
      // entry i is the (i − 2)th record: two entries before it are skipped.
      amended = first.recordIds[i - 2];
      expect(report).toMatchObject({ created: 1, updated: 1, unchanged: first.created - 1 });
      expect(report.updatedIds).toEqual([amended]);
      expect(await count(api, erin.id)).toBe(first.created + 1);
      await anchored(api, amended);
      const { recordHistory } = await api.ok<{
        recordHistory: { version: number; resource: { valueQuantity: { value: number } } }[];
      }>(HISTORY, { id: amended }, erin.token);
      expect(recordHistory.map((v) => v.version)).toEqual([2, 1]);
      expect(recordHistory[0].resource.valueQuantity.value).toBe(quantity.value);
      expect(recordHistory[1].resource.valueQuantity.value).toBe(quantity.value - 1);
      // Both versions anchored, in order, and verified.
      const { record } = await api.ok<{ record: Rec }>(ONE, { id: amended }, erin.token);
      expect(record.integrity).toBe('VERIFIED');
    });

    it('links a later bundle to what an earlier one brought: its references to entries imported before name their records', async () => {
      // A record referring to other imported records (DiagnosticReport.result, …), sent again in
      // a bundle of its own: the entries it refers to are not in it, but were imported before.
      const { urls, source } = referringEntry(bundle);
      const target = urls.get(
        refsOf(bundle.entry[source].resource).find((r) => (urls.get(r) ?? 0) > 2)!,
      )!;
      const later = {
        ...structuredClone(bundle),
        entry: [
          structuredClone(bundle.entry[0]),
          structuredClone(bundle.entry[source]),
          {
            fullUrl: `urn:uuid:${randomUUID()}`,
            resource: {
              resourceType: 'Observation',
              status: 'final',
              code: { coding: [{ system: 'http://loinc.org', code: '8310-5' }] },
              subject: { reference: bundle.entry[0].fullUrl },
              focus: [{ reference: bundle.entry[target].fullUrl }],
            },
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      };
      const before = await count(api, erin.id);
      const res = await importAs(erin.token, later);
      expect(res.errors).toBeUndefined();
      const report = res.data!.importBundle;
      // The record as it was stored (its references resolved as the first time), and the new
      // one linked to the record already here.
      expect(report).toMatchObject({ created: 1, updated: 0, unchanged: 2 });
      expect(report.unchangedIds).toEqual([first.recordIds[0], first.recordIds[source - 2]]);
      expect(await count(api, erin.id)).toBe(before + 1);
      const { record } = await api.ok<{ record: Rec }>(
        ONE,
        { id: report.recordIds[0] },
        erin.token,
      );
      expect(record.resource.focus).toEqual([
        {
          reference: `${bundle.entry[target].resource.resourceType}/${first.recordIds[target - 2]}`,
        },
      ]);
    });

    it('never matches a record the importer may not read: a WRITE-only clinician makes new ones', async () => {
      const dr = await api.token('dr-write-only', 'CLINICIAN');
      await api.grantRead(erin.token, 'dr-write-only', {
        actions: ['WRITE'],
        resourceTypes: ['Observation'],
      });
      const observations = structuredClone(bundle);
      observations.entry = observations.entry.filter(
        (e) => e.resource.resourceType === 'Observation',
      );
      const before = await count(api, erin.id);
      const res = await importAs(dr, observations, erin.id);
      expect(res.errors).toBeUndefined();
      // As if the patient had none of them: whether they do is not the clinician's to learn.
      expect(res.data!.importBundle).toMatchObject({
        created: observations.entry.length,
        updated: 0,
        unchanged: 0,
      });
      expect(await count(api, erin.id)).toBe(before + observations.entry.length);
      // Ids of one shape whether or not a record holds an entry's first id.
      for (const id of res.data!.importBundle.recordIds) expect(id[14]).toBe('8');
    });

    it('answers alike whether or not a record the importer may not read comes from the same source', async () => {
      const ida = await patient(api, 'ida');
      const observation = (restricted: boolean) => ({
        resourceType: 'Observation',
        ...(restricted
          ? {
              meta: {
                security: [
                  { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' },
                ],
              },
            }
          : {}),
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
        subject: { reference: `Patient/${ida.id}` },
      });
      const one = (fullUrl: string, restricted: boolean) => ({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ fullUrl, resource: observation(restricted) }],
      });
      const hidden = `urn:uuid:${randomUUID()}`;
      const unused = `urn:uuid:${randomUUID()}`;
      // The patient's own restricted record, from `hidden`.
      expect((await importAs(ida.token, one(hidden, true))).data!.importBundle.created).toBe(1);
      const dr = await api.token('dr-probe', 'CLINICIAN');
      await api.grantRead(ida.token, 'dr-probe', { actions: ['READ', 'WRITE'] });
      const answers = [];
      for (const fullUrl of [hidden, unused]) {
        const first = (await importAs(dr, one(fullUrl, false), ida.id)).data!.importBundle;
        const again = (await importAs(dr, one(fullUrl, false), ida.id)).data!.importBundle;
        expect(first.recordIds[0][14]).toBe('8');
        answers.push([first.created, first.unchanged, again.created, again.unchanged]);
      }
      // Made once, then found: the same either way.
      expect(answers).toEqual([
        [1, 0, 0, 1],
        [1, 0, 0, 1],
      ]);
    });

    it('answers alike after a source has been used for other types: no finite set of ids to use up', async () => {
      const kim = await patient(api, 'kim');
      const subject = { reference: `Patient/${kim.id}` };
      const resources: Record<string, Record<string, unknown>> = {
        Condition: { subject, code: { text: 'x' } },
        Procedure: { status: 'completed', subject, code: { text: 'x' } },
        AllergyIntolerance: {
          clinicalStatus: {
            coding: [
              {
                system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
                code: 'active',
              },
            ],
          },
          patient: subject,
          code: { text: 'x' },
        },
        MedicationRequest: {
          status: 'active',
          intent: 'order',
          subject,
          medicationCodeableConcept: { text: 'x' },
        },
        Immunization: {
          status: 'completed',
          patient: subject,
          vaccineCode: { text: 'x' },
          occurrenceDateTime: '2020-01-01',
        },
        Observation: {
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
          subject,
        },
      };
      const one = (fullUrl: string, type: string, extra: Record<string, unknown> = {}) => ({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ fullUrl, resource: { resourceType: type, ...resources[type], ...extra } }],
      });
      const hidden = `urn:uuid:${randomUUID()}`;
      const restricted = {
        meta: {
          security: [
            { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' },
          ],
        },
      };
      const own = await importAs(kim.token, one(hidden, 'Observation', restricted));
      expect(own.errors).toBeUndefined();
      const dr = await api.token('dr-exhaust', 'CLINICIAN');
      await api.grantRead(kim.token, 'dr-exhaust', { actions: ['READ', 'WRITE'] });
      const answers = [];
      for (const fullUrl of [hidden, `urn:uuid:${randomUUID()}`]) {
        // Five other types from the same source take five ids, past any first four.
        for (const type of [
          'Condition',
          'Procedure',
          'AllergyIntolerance',
          'MedicationRequest',
          'Immunization',
        ]) {
          const res = await importAs(dr, one(fullUrl, type), kim.id);
          expect(res.errors).toBeUndefined();
        }
        const first = (await importAs(dr, one(fullUrl, 'Observation'), kim.id)).data!.importBundle;
        const again = (await importAs(dr, one(fullUrl, 'Observation'), kim.id)).data!.importBundle;
        answers.push([first.created, again.unchanged, first.recordIds[0][14]]);
      }
      expect(answers).toEqual([
        [1, 1, '8'],
        [1, 1, '8'],
      ]);
    });

    it('refuses a clinician filing a changed record apart from its content, tag or no tag', async () => {
      const lu = await patient(api, 'lu');
      const fullUrl = 'urn:uuid:2c4e6a8b-0d1f-4a3b-8c5d-7e9f1a2b3c4d';
      const lab = (tag?: string) => oneEntry(fullUrl, labResult(lu.id, 5.4, tag));
      const vital = (tag?: string) =>
        oneEntry(fullUrl, { ...labResult(lu.id, 5.4, tag), category: vitalSign().category });
      const own = await importAs(lu.token, lab());
      const [id] = own.data!.importBundle.recordIds;
      const dr = await api.token('dr-lab', 'CLINICIAN');
      await api.grantRead(lu.token, 'dr-lab', {
        actions: ['READ', 'WRITE'],
        categories: ['laboratory'],
      });
      // Its content now says vital-signs; the tag would keep it under laboratory.
      const res = await importAs(dr, vital('laboratory'), lu.id);
      expect(codes(res)).toEqual(['FORBIDDEN']);
      const { rows } = await api.db.query('SELECT version, category FROM records WHERE id = $1', [
        id,
      ]);
      expect(rows).toEqual([{ version: 1, category: 'laboratory' }]);
    });

    it('lets a clinician who may read and write them update records imported before, as updateRecord would', async () => {
      const dr = await api.token('dr-resync', 'CLINICIAN');
      await api.grantRead(erin.token, 'dr-resync', {
        actions: ['READ', 'WRITE'],
        resourceTypes: ['Observation'],
      });
      // Observations that refer to no other entry: without those entries in the bundle, its
      // references to them could not be rewritten as before, and the records would change.
      const observations = structuredClone(bundle);
      observations.entry = observations.entry.filter(
        (e) =>
          e.resource.resourceType === 'Observation' &&
          !/"reference"/.test(JSON.stringify({ ...e.resource, subject: undefined })),
      );
      const j = observations.entry.findIndex((e) => 'valueQuantity' in e.resource);
      expect(j).toBeGreaterThanOrEqual(0);
      (observations.entry[j].resource.valueQuantity as { value: number }).value += 100;
      const before = await count(api, erin.id);
      const res = await importAs(dr, observations, erin.id);
      expect(res.errors).toBeUndefined();
      const report = res.data!.importBundle;
      expect(report).toMatchObject({ created: 0, updated: 1 });
      expect(report.unchanged).toBe(observations.entry.length - 1);
      expect(await count(api, erin.id)).toBe(before);
      // One WRITE event, naming the record it changed, under the grant; one READ event for
      // those it found unchanged (the answer told what they hold).
      const log = await api.db.query(
        `SELECT action, decision, record_ids FROM access_events
         WHERE patient_id = $1 AND actor_id = 'dr-resync' ORDER BY seq`,
        [erin.id],
      );
      expect(log.rows).toEqual([
        { action: 'WRITE', decision: 'PERMIT', record_ids: report.updatedIds },
        { action: 'READ', decision: 'PERMIT', record_ids: report.unchangedIds },
      ]);
    });

    it("refuses a clinician's import that would lift a record's restriction, writing nothing", async () => {
      const hal = await patient(api, 'hal');
      const restricted = (code: string) => ({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          {
            fullUrl: 'urn:uuid:6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
            resource: {
              resourceType: 'Observation',
              meta: {
                security: [
                  {
                    system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
                    code,
                  },
                ],
              },
              status: 'final',
              code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
              subject: { reference: `Patient/${hal.id}` },
            },
          },
        ],
      });
      const mine = await importAs(hal.token, restricted('R'));
      expect(mine.data!.importBundle.created).toBe(1);
      const [id] = mine.data!.importBundle.recordIds;
      const dr = await api.token('dr-lift', 'CLINICIAN');
      await api.grantRead(hal.token, 'dr-lift', {
        actions: ['READ', 'WRITE'],
        includeRestricted: true,
      });
      const res = await importAs(dr, restricted('N'), hal.id);
      expect(codes(res)).toEqual(['FORBIDDEN']);
      expect(res.errors![0].message).toMatch(/^entry\[0\] would lift a record's restriction/);
      const { rows } = await api.db.query(
        'SELECT version, sensitivity FROM records WHERE id = $1',
        [id],
      );
      expect(rows).toEqual([{ version: 1, sensitivity: 'RESTRICTED' }]);
      // The patient may: their own import of it lifts the restriction, as a new version.
      const lifted = await importAs(hal.token, restricted('N'));
      expect(lifted.data!.importBundle).toMatchObject({ updated: 1, updatedIds: [id] });
      const after = await api.db.query('SELECT version, sensitivity FROM records WHERE id = $1', [
        id,
      ]);
      expect(after.rows).toEqual([{ version: 2, sensitivity: 'NORMAL' }]);
    });

    it('takes two identical imports at once without storing anything twice', async () => {
      const fay = await patient(api, 'fay');
      const small = structuredClone(bundle);
      small.entry = small.entry.slice(0, 40);
      const both = await Promise.all([importAs(fay.token, small), importAs(fay.token, small)]);
      // The one that lost the race plans again and finds the other's records, unchanged.
      for (const r of both) expect(r.errors).toBeUndefined();
      const kept = small.entry.length - 2;
      const reports = both.map((r) => r.data!.importBundle);
      expect(reports.map((r) => r.created + r.unchanged)).toEqual([kept, kept]);
      expect(reports[0].created + reports[1].created).toBe(kept);
      expect(await count(api, fay.id)).toBe(kept);
      const again = await importAs(fay.token, small);
      expect(again.data!.importBundle).toMatchObject({ created: 0, unchanged: kept });
    });

    it("keeps a record where its patient filed it when a clinician's import changes it, as updateRecord does", async () => {
      const jo = await patient(api, 'jo');
      const lab = (value: number, filed?: string) =>
        oneEntry('urn:uuid:7b2e4c6d-8f0a-4b1c-9d2e-3f4a5b6c7d8e', labResult(jo.id, value, filed));
      // The patient files their lab result under psych.
      const own = await importAs(jo.token, lab(90, 'psych'));
      expect(own.errors).toBeUndefined();
      const [id] = own.data!.importBundle.recordIds;
      const dr = await api.token('dr-psych', 'CLINICIAN');
      await api.grantRead(jo.token, 'dr-psych', {
        actions: ['READ', 'WRITE'],
        categories: ['psych'],
      });
      // Their own export's entry, tag and all, sent back unchanged: nothing to refuse.
      const same = await importAs(dr, lab(90, 'psych'), jo.id);
      expect(same.errors).toBeUndefined();
      expect(same.data!.importBundle).toMatchObject({ unchanged: 1, unchangedIds: [id] });
      // A new value without the tag: a new version, still filed under psych.
      const newer = await importAs(dr, lab(95), jo.id);
      expect(newer.errors).toBeUndefined();
      expect(newer.data!.importBundle).toMatchObject({ updated: 1, updatedIds: [id] });
      const { rows } = await api.db.query('SELECT version, category FROM records WHERE id = $1', [
        id,
      ]);
      expect(rows).toEqual([{ version: 2, category: 'psych' }]);
    });

    it('takes two imports of the same new entries in opposite orders at once: no deadlock, nothing twice', async () => {
      const gil = await patient(api, 'gil');
      const forward = structuredClone(bundle);
      forward.entry = forward.entry.slice(0, 200);
      const backward = { ...forward, entry: [...forward.entry].reverse() };
      const both = await Promise.all([importAs(gil.token, forward), importAs(gil.token, backward)]);
      for (const r of both) expect(r.errors).toBeUndefined();
      expect(await count(api, gil.id)).toBe(forward.entry.length - 2);
    });

    it('tells a WRITE-only clinician nothing of the patient importing the same source at the same moment', async () => {
      const hu = await patient(api, 'hu');
      await api.grantRead(hu.token, 'dr-hu-writer', { actions: ['WRITE'] });
      const writer = await api.token('dr-hu-writer', 'CLINICIAN');
      const small = structuredClone(bundle);
      small.entry = small.entry.slice(0, 40);
      const kept = small.entry.length - 2;
      const [own, theirs] = await Promise.all([
        importAs(hu.token, small),
        importAs(writer, small, hu.id),
      ]);
      // No CONFLICT for either: the clinician, who may not read the patient's records, makes
      // new ones whichever stored first, as if the patient had not imported at all.
      expect(own.errors).toBeUndefined();
      expect(theirs.errors).toBeUndefined();
      expect(theirs.data!.importBundle).toMatchObject({ created: kept, unchanged: 0 });
      expect(await count(api, hu.id)).toBe(2 * kept);
    });

    it('reads a urn:uuid fullUrl in any case: the same entries in upper case are found again', async () => {
      // Every urn:uuid in upper case: fullUrls and the references to them alike.
      const upper = JSON.parse(
        JSON.stringify(bundle).replace(
          /urn:uuid:([0-9a-f-]{36})/g,
          (_, id: string) => `urn:uuid:${id.toUpperCase()}`,
        ),
      ) as typeof bundle;
      const before = await count(api, erin.id);
      const res = await importAs(erin.token, upper);
      expect(res.errors).toBeUndefined();
      expect(res.data!.importBundle.created).toBe(0);
      expect(await count(api, erin.id)).toBe(before);
    });
  });

  describe('a large bundle', () => {
    it('imports 1,000 entries (over the 1 MB body limit) in one request', async () => {
      const erin = await patient(api, 'erin');
      const bundle = largeBundle(1000);
      const body = JSON.stringify({ query: IMPORT, variables: { b: bundle } });
      expect(body.length).toBeGreaterThan(1024 * 1024);
      const started = Date.now();
      const cpu = process.cpuUsage();
      const res = await api.post(body, erin.token);
      const took = Date.now() - started;
      const used = process.cpuUsage(cpu);
      const json = (await res.json()) as { data: { importBundle: Report }; errors?: unknown };
      expect(json.errors).toBeUndefined();
      expect(json.data.importBundle.created + json.data.importBundle.skipped).toBe(1000);
      expect(await count(api, erin.id)).toBe(json.data.importBundle.created);
      // Measured, not asserted: this machine is shared and loaded.
      console.log(
        `imported 1,000 entries (${(body.length / 1e6).toFixed(2)} MB) in ${took} ms, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU (server and client in this process)`,
      );
    });

    it('refuses a body over 1 MB to anyone but an authenticated importer, and to other operations', async () => {
      const body = JSON.stringify({ query: IMPORT, variables: { b: largeBundle(1000) } });
      expect((await api.post(body)).status).toBe(413);
      expect((await api.post(body, await api.token('r', 'RESEARCHER'))).status).toBe(413);
      const other = JSON.stringify({
        query: `${IMPORT} query { me { id } }`,
        variables: { b: largeBundle(1000) },
      });
      expect((await api.post(other, alice.token)).status).toBe(413);
    });
  });

  describe('export', () => {
    it('gives each grant as a FHIR Consent, valid by our validator', async () => {
      const grantId = await api.grantRead(alice.token, 'dr-export', {
        resourceTypes: ['Observation'],
      });
      const { consents } = await api.ok<{
        consents: { id: string; fhir: Record<string, unknown> }[];
      }>('{ consents { id fhir } }', {}, alice.token);
      const consent = consents.find((c) => c.id === grantId)!.fhir;
      expect(fhirIssues(consent)).toEqual([]);
      expect(consent).toMatchObject({
        resourceType: 'Consent',
        status: 'active',
        patient: { reference: `Patient/${alice.id}` },
        provision: { actor: [{ reference: { reference: 'Practitioner/dr-export' } }] },
      });
      // The clinician the grant names sees the same Consent.
      const dr = await api.token('dr-export', 'CLINICIAN');
      const theirs = await api.ok<{ consents: { fhir: unknown }[] }>(
        '{ consents { fhir } }',
        {},
        dr,
      );
      expect(theirs.consents.map((c) => c.fhir)).toEqual([consent]);
    });

    it('exports more records than one chunk, each once, oldest first, opening a chunk at a time', async () => {
      const bob = await patient(api, 'bob-many');
      const res = await importAs(bob.token, largeBundle(2 * EXPORT_CHUNK + 50));
      expect(res.errors).toBeUndefined();
      const { rows } = await api.db.query<{ id: string }>(
        'SELECT id FROM records WHERE patient_id = $1 ORDER BY created_at, id',
        [bob.id],
      );
      expect(rows.length).toBeGreaterThan(2 * EXPORT_CHUNK);
      const events = async () =>
        Number(
          (await api.db.query('SELECT count(*) FROM access_events WHERE patient_id = $1', [bob.id]))
            .rows[0].count,
        );
      const loggedBefore = await events();

      const opener = api.server.app.get(RecordOpener);
      let inFlight = 0;
      let most = 0;
      const open = opener.open.bind(opener);
      const spy = jest.spyOn(opener, 'open').mockImplementation(async (row) => {
        most = Math.max(most, ++inFlight);
        try {
          return await open(row);
        } finally {
          inFlight--;
        }
      });
      let bundle: { entry: { fullUrl: string; resource: Record<string, unknown> }[] };
      try {
        ({ exportMyData: bundle } = await api.ok<{ exportMyData: typeof bundle }>(
          EXPORT,
          {},
          bob.token,
        ));
      } finally {
        spy.mockRestore();
      }
      const exported = bundle.entry
        .filter((e) => e.resource.resourceType !== 'Consent')
        .map((e) => e.fullUrl.replace('urn:uuid:', ''));
      expect(exported).toEqual(rows.map((r) => r.id));
      expect(most).toBeLessThanOrEqual(EXPORT_CHUNK);
      // One READ event for the whole export, naming every record.
      expect(await events()).toBe(loggedBefore + 1);
      const { rows: logged } = await api.db.query(
        `SELECT action, cardinality(record_ids) AS records FROM access_events
         WHERE patient_id = $1 ORDER BY seq DESC LIMIT 1`,
        [bob.id],
      );
      expect(logged[0]).toEqual({ action: 'READ', records: rows.length });
    });

    it('exports records and grants as one valid collection bundle that imports into a fresh instance', async () => {
      // A record labelled at creation, beyond what its content says: restricted, and of a
      // category of the patient's choosing. Its labels must survive the trip.
      const labelled = await api.ok<{ createRecord: { id: string } }>(
        `mutation($r: JSON!) { createRecord(input: { resource: $r, sensitivity: RESTRICTED,
           category: "my-own-category" }) { id } }`,
        {
          r: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
            subject: { reference: `Patient/${alice.id}` },
            valueQuantity: { value: 5.4, unit: 'mmol/L' },
          },
        },
        alice.token,
      );
      const { exportMyData: bundle } = await api.ok<{
        exportMyData: { type: string; entry: { resource: Record<string, unknown> }[] };
      }>(EXPORT, {}, alice.token);
      expect(bundle.type).toBe('collection');
      // Each resource on its own: the validator resolves a contained reference (`#med`) of a
      // resource inside a Bundle against the Bundle (ref-1), which HAPI does not.
      for (const e of bundle.entry) expect(fhirIssues(e.resource)).toEqual([]);
      const resources = bundle.entry.map((e) => e.resource);
      expect(resources.filter((r) => r.resourceType === 'Consent')).toHaveLength(1);
      const stored = await count(api, alice.id);
      expect(resources.length).toBe(stored + 1);

      // Brought back into the same chart (a restored backup), it stores nothing twice: each
      // entry names the record it was exported from.
      const back = await importAs(alice.token, bundle);
      expect(back.errors).toBeUndefined();
      expect(back.data!.importBundle).toMatchObject({ created: 0, updated: 0, unchanged: stored });
      expect(await count(api, alice.id)).toBe(stored);

      const fresh = await TestApi.start();
      try {
        const again = await patient(fresh, 'alice-elsewhere');
        const res = await fresh.gql<{ importBundle: Report }>(IMPORT, { b: bundle }, again.token);
        expect(res.errors).toBeUndefined();
        expect(res.data!.importBundle).toMatchObject({
          created: stored,
          skipped: 1,
          skippedTypes: ['Consent'],
        });
        const { exportMyData: back } = await fresh.ok<{ exportMyData: typeof bundle }>(
          EXPORT,
          {},
          again.token,
        );
        const records = (b: typeof bundle) =>
          b.entry.map((e) => e.resource).filter((r) => r.resourceType !== 'Consent');
        const ids = (b: typeof bundle) => new Set(records(b).map((r) => String(r.id)));
        const before = records(bundle)
          .map((r) => comparable(r, ids(bundle)))
          .sort();
        const after = records(back)
          .map((r) => comparable(r, ids(back)))
          .sort();
        expect(after).toEqual(before);
        // Every record's labels as they were: type, category and sensitivity.
        const labels = async (t: TestApi, patientId: string) =>
          (
            await t.db.query(
              `SELECT resource_type, category, sensitivity FROM records WHERE patient_id = $1`,
              [patientId],
            )
          ).rows
            .map((r) => `${r.resource_type}/${r.category}/${r.sensitivity}`)
            .sort();
        expect(await labels(fresh, again.id)).toEqual(await labels(api, alice.id));
        expect(await labels(fresh, again.id)).toContain('Observation/my-own-category/RESTRICTED');
        // The category tag carried the label across and is not left in the stored resource.
        const exported = bundle.entry.find(
          (e) => e.resource.id === labelled.createRecord.id,
        )!.resource;
        expect(JSON.stringify(exported.meta)).toContain('my-own-category');
        const { records: restored } = await fresh.ok<{
          records: { items: { resource: Record<string, unknown> }[] };
        }>(
          `query($p: ID!) { records(patientId: $p, category: "my-own-category") {
             items { resource } } }`,
          { p: again.id },
          again.token,
        );
        expect(restored.items).toHaveLength(1);
        const meta = JSON.stringify(restored.items[0].resource.meta);
        expect(meta.includes('urn:custodia:record-category')).toBe(false);
        expect(meta.includes('v3-Confidentiality')).toBe(true);
      } finally {
        await fresh.stop();
      }
    });
  });
});
