// Amendments and history: versions in order, each anchored and verified on its own, stale
// writes refused, consent for writing and for reading every version, tampering detected.
import { randomUUID } from 'node:crypto';
import { codes, TestApi } from './helpers/test-api';
import { condition, CONFIDENTIALITY, LOINC, observation, vitalSign } from './helpers/fhir';
import { corpusResource } from './helpers/fhir-corpus';
import { EmbeddedLedger, Ledger, LEDGER } from '../src/ledger';
import { RecordAnchoring } from '../src/records';
import { DataKeyRing } from '../src/records/crypto';
import { DataSource } from 'typeorm';

const REGISTER = `mutation { registerPatient { id } }`;
const CREATE = `mutation($input: CreateRecordInput!) { createRecord(input: $input) {
  id version contentHash ledgerTxId } }`;
const UPDATE = `mutation($id: ID!, $r: JSON!, $v: Int!) {
  updateRecord(id: $id, resource: $r, expectedVersion: $v) {
    id version resource integrity contentHash ledgerTxId category sensitivity effectiveAt
    createdAt updatedAt } }`;
const HISTORY = `query($id: ID!) { recordHistory(id: $id) {
  id version resource integrity contentHash ledgerTxId updatedAt } }`;
const SEARCH = `query($p: ID!, $code: String) { records(patientId: $p, code: $code) { items { id version } } }`;
const ERASE = 'mutation { eraseMyData(confirm: true) }';

type Version = {
  id: string;
  version: number;
  resource: Record<string, unknown> & { meta?: Record<string, unknown> };
  integrity: string;
  contentHash: string;
  ledgerTxId: string | null;
  updatedAt: string;
};

describe('record amendments and history', () => {
  let api: TestApi;
  let alice: string;
  let aliceId: string;

  beforeAll(async () => {
    // A short first retry, so that the outbox recovers quickly after an outage.
    api = await TestApi.start({ ANCHOR_RETRY_MS: '50' });
    alice = await api.token('alice', 'PATIENT');
    aliceId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, alice))
      .registerPatient.id;
  });
  afterAll(async () => {
    api?.server.app.get<EmbeddedLedger>(LEDGER).simulateOutage(false);
    await api?.stop();
  });

  async function create(resource: Record<string, unknown>, token = alice) {
    return (
      await api.ok<{ createRecord: { id: string; contentHash: string; ledgerTxId: string } }>(
        CREATE,
        { input: { resource } },
        token,
      )
    ).createRecord;
  }
  const update = (id: string, r: unknown, v: number, token = alice) =>
    api.gql<{ updateRecord: Version & Record<string, unknown> }>(UPDATE, { id, r, v }, token);
  const history = (id: string, token = alice) =>
    api.gql<{ recordHistory: Version[] }>(HISTORY, { id }, token);
  const versionRows = async (id: string) =>
    Number(
      (await api.db.query('SELECT count(*) FROM record_versions WHERE record_id = $1', [id]))
        .rows[0].count,
    );

  describe('as the patient', () => {
    it('stores a new version with the server’s versionId and lastUpdated, anchored and verified', async () => {
      const v1 = await create(observation('4548-4', 7.4, '%'));
      const amended = {
        ...observation('4548-4', 7.2, '%'),
        meta: { versionId: '99', lastUpdated: '2001-01-01T00:00:00Z', tag: [{ code: 'kept' }] },
      };
      const res = await update(v1.id, amended, 1);
      expect(res.errors).toBeUndefined();
      const v2 = res.data!.updateRecord;
      expect(v2).toMatchObject({ id: v1.id, version: 2, integrity: 'VERIFIED' });
      expect(v2.resource.meta).toEqual({
        versionId: '2',
        lastUpdated: v2.updatedAt,
        tag: [{ code: 'kept' }],
      });
      expect(v2.resource.valueQuantity).toEqual({ value: 7.2, unit: '%' });
      expect(v2.contentHash).not.toBe(v1.contentHash);
      expect(v2.ledgerTxId).toBeTruthy();
      expect(v2.ledgerTxId).not.toBe(v1.ledgerTxId);

      const { data } = await history(v1.id);
      const list = data!.recordHistory;
      expect(list.map((v) => v.version)).toEqual([2, 1]);
      expect(list.map((v) => v.integrity)).toEqual(['VERIFIED', 'VERIFIED']);
      expect(list[1]).toMatchObject({ contentHash: v1.contentHash, ledgerTxId: v1.ledgerTxId });
      expect(list[1].resource.valueQuantity).toEqual({ value: 7.4, unit: '%' });
      // The first version carries the server's id and version meta as every later one does.
      expect(list[1].resource).toMatchObject({
        id: v1.id,
        meta: { versionId: '1', lastUpdated: list[1].updatedAt },
      });
      expect(list[0].resource.id).toBe(v1.id);
      expect(list[0]).toMatchObject({ contentHash: v2.contentHash, ledgerTxId: v2.ledgerTxId });
    });

    it('anchors every version on the ledger in order', async () => {
      const { id } = await create(observation('2345-7'));
      for (let v = 1; v <= 3; v++) {
        expect((await update(id, observation('2345-7', 5 + v), v)).errors).toBeUndefined();
      }
      const anchored = await api.server.app
        .get<Ledger>(LEDGER)
        .evaluate<{ version: number; contentHash: string }[]>('records', 'RecordHistory', [id]);
      const list = (await history(id)).data!.recordHistory;
      expect(anchored.map((a) => a.version)).toEqual([1, 2, 3, 4]);
      expect(list.map((v) => v.contentHash)).toEqual(
        [...anchored].reverse().map((a) => a.contentHash),
      );
    });

    it('keeps versions written during a ledger outage PENDING, then anchors them in order', async () => {
      const ledger = api.server.app.get<EmbeddedLedger>(LEDGER);
      const anchoring = api.server.app.get(RecordAnchoring);
      ledger.simulateOutage(true);
      let id: string;
      try {
        id = (
          await api.ok<{ createRecord: { id: string } }>(
            CREATE,
            { input: { resource: observation('2160-0', 1.0) } },
            alice,
          )
        ).createRecord.id;
        for (let v = 1; v <= 2; v++) {
          const res = await update(id, observation('2160-0', 1 + v / 10), v);
          expect(res.data!.updateRecord).toMatchObject({ version: v + 1, integrity: 'PENDING' });
        }
      } finally {
        ledger.simulateOutage(false);
      }
      const { rows } = await api.db.query(
        `SELECT count(*)::int AS n FROM record_versions WHERE record_id = $1 AND anchor_state = 'PENDING'`,
        [id],
      );
      expect(rows[0].n).toBe(2);
      // Each anchoring is an event: after each, ask storage whether any version still waits.
      const pendingLeft = async () =>
        (
          await api.db.query(
            `SELECT (SELECT count(*) FROM record_versions WHERE record_id = $1 AND anchor_state = 'PENDING')
                  + (SELECT count(*) FROM records WHERE id = $1 AND anchor_state = 'PENDING') AS n`,
            [id],
          )
        ).rows[0].n as string;
      await new Promise<void>((resolve, reject) => {
        const check = () =>
          pendingLeft().then((n) => {
            if (n !== '0') return;
            anchoring.events.off('anchored', check);
            resolve();
          }, reject);
        anchoring.events.on('anchored', check);
        void anchoring.drainOnce().then(check);
      });
      const list = (await history(id)).data!.recordHistory;
      expect(list.map((v) => [v.version, v.integrity])).toEqual([
        [3, 'VERIFIED'],
        [2, 'VERIFIED'],
        [1, 'VERIFIED'],
      ]);
      const states = await api.db.query(
        `SELECT anchor_state FROM record_versions WHERE record_id = $1
         UNION ALL SELECT anchor_state FROM records WHERE id = $1`,
        [id],
      );
      expect(states.rows.map((r) => r.anchor_state)).toEqual(['ANCHORED', 'ANCHORED', 'ANCHORED']);
    });

    it('refuses a stale expectedVersion with CONFLICT and writes nothing', async () => {
      const { id } = await create(observation('718-7'));
      expect((await update(id, observation('718-7', 13), 1)).errors).toBeUndefined();
      const before = await api.db.query('SELECT version, auth_tag FROM records WHERE id = $1', [
        id,
      ]);
      for (const v of [1, 3]) {
        const res = await update(id, observation('718-7', 14), v);
        expect(codes(res)).toEqual(['CONFLICT']);
        expect(res.errors![0].message).not.toContain('14');
      }
      const after = await api.db.query('SELECT version, auth_tag FROM records WHERE id = $1', [id]);
      expect(after.rows).toEqual(before.rows);
      expect(await versionRows(id)).toBe(1);
    });

    it('lets only one of two concurrent amendments of the same version through', async () => {
      const { id } = await create(observation('718-7'));
      const results = await Promise.all([
        update(id, observation('718-7', 11), 1),
        update(id, observation('718-7', 12), 1),
      ]);
      expect(results.map((r) => codes(r)[0] ?? 'OK').sort()).toEqual(['CONFLICT', 'OK']);
      expect((await history(id)).data!.recordHistory.map((v) => v.version)).toEqual([2, 1]);
    });

    it('validates the amendment as FHIR R4 and keeps its resource type, writing nothing', async () => {
      const { id } = await create(observation('718-7'));
      const invalid = { ...observation('718-7'), status: 'not-a-status' };
      const refused = await update(id, invalid, 1);
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      // The field names updateRecord's own argument (it has no `input`).
      expect(refused.errors![0].extensions!.field).toBe('resource.status');
      const other = await update(id, condition(), 1);
      expect(codes(other)).toEqual(['BAD_USER_INPUT']);
      expect(codes(await update(id, observation(), 0))).toEqual(['BAD_USER_INPUT']);
      // A resource naming another record's id is refused, not renamed; its own id is fine.
      const misnamed = await update(id, { ...observation(), id: randomUUID() }, 1);
      expect(codes(misnamed)).toEqual(['BAD_USER_INPUT']);
      expect(misnamed.errors![0].extensions!.field).toBe('resource.id');
      expect(await versionRows(id)).toBe(0);
      expect((await update(id, { ...observation(), id }, 1)).errors).toBeUndefined();
    });

    it('amends a real Synthea condition and searches by its new code only', async () => {
      const synthea = corpusResource('synthea-Condition-1.json');
      delete synthea.subject;
      delete synthea.encounter;
      const { id } = await create(synthea);
      const code = (synthea.code as { coding: { system: string; code: string }[] }).coding[0];
      const amended = {
        ...synthea,
        code: { coding: [{ system: 'http://snomed.info/sct', code: '73211009' }] },
      };
      expect((await update(id, amended, 1)).errors).toBeUndefined();
      const found = (c: string) =>
        api
          .ok<{ records: { items: { id: string }[] } }>(SEARCH, { p: aliceId, code: c }, alice)
          .then((d) => d.records.items.map((r) => r.id));
      expect(await found(`${code.system}|${code.code}`)).not.toContain(id);
      expect(await found('http://snomed.info/sct|73211009')).toContain(id);
    });

    it('keeps a restriction unless the patient lifts it with a lower confidentiality label', async () => {
      const { id } = await create(condition('44054006', true));
      // No label in the amendment: the record keeps its own.
      const res = await update(id, condition('44054006'), 1);
      expect(res.data!.updateRecord.sensitivity).toBe('RESTRICTED');
      // The patient's N label lifts it.
      const normal = {
        ...condition('44054006'),
        meta: { security: [{ system: CONFIDENTIALITY, code: 'N' }] },
      };
      const lifted = await update(id, normal, 2);
      expect(lifted.data!.updateRecord.sensitivity).toBe('NORMAL');
    });

    it('refuses a sensitivity that contradicts the content’s own confidentiality label', async () => {
      const refused = await api.gql(
        CREATE,
        {
          input: { resource: condition('44054006', true), sensitivity: 'NORMAL' },
        },
        alice,
      );
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      expect(refused.errors![0].extensions!.field).toBe('sensitivity');
    });

    it('answers NOT_FOUND for an id that does not exist or is malformed', async () => {
      for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
        expect(codes(await update(id, observation(), 1))).toEqual(['NOT_FOUND']);
        expect(codes(await history(id))).toEqual(['NOT_FOUND']);
      }
    });
  });

  describe('consent', () => {
    let obsId: string;
    let condId: string;

    beforeAll(async () => {
      obsId = (await create(observation('8310-5', 37))).id;
      condId = (await create(condition())).id;
      await update(condId, condition('38341003'), 1);
    });

    it('hides history and amendment from a clinician without a grant (NOT_FOUND)', async () => {
      const dr = await api.token('dr-none', 'CLINICIAN');
      expect(codes(await history(obsId, dr))).toEqual(['NOT_FOUND']);
      expect(codes(await update(obsId, observation('8310-5', 38), 1, dr))).toEqual(['NOT_FOUND']);
    });

    it('tells a clinician who may read but not write that amending needs consent', async () => {
      const dr = await api.token('dr-read', 'CLINICIAN');
      await api.grantRead(alice, 'dr-read');
      expect(codes(await update(obsId, observation('8310-5', 38), 1, dr))).toEqual([
        'CONSENT_REQUIRED',
      ]);
      expect((await history(obsId, dr)).data!.recordHistory).toHaveLength(1);
    });

    it('lets a clinician with a WRITE grant amend, logged as a write under that grant', async () => {
      const dr = await api.token('dr-write', 'CLINICIAN');
      const grantId = await api.grantRead(alice, 'dr-write', {
        actions: ['READ', 'WRITE'],
        resourceTypes: ['Observation'],
      });
      const res = await update(
        obsId,
        { ...observation('8310-5', 38.2), subject: { reference: `Patient/${aliceId}` } },
        1,
        dr,
      );
      expect(res.errors).toBeUndefined();
      expect(res.data!.updateRecord).toMatchObject({ version: 2, integrity: 'VERIFIED' });
      const { rows } = await api.db.query(
        `SELECT action, decision, consent_id FROM access_events
         WHERE actor_id = 'dr-write' AND $1 = ANY(record_ids) ORDER BY seq`,
        [obsId],
      );
      expect(rows).toEqual([{ action: 'WRITE', decision: 'PERMIT', consent_id: grantId }]);
      // The grant covers Observations only: a Condition is not theirs to amend or see.
      expect(codes(await update(condId, condition('1'), 2, dr))).toEqual(['NOT_FOUND']);
      expect(codes(await history(condId, dr))).toEqual(['NOT_FOUND']);
    });

    it("lets only the patient lift a record's restriction", async () => {
      const dr = await api.token('dr-lift', 'CLINICIAN');
      await api.grantRead(alice, 'dr-lift', {
        actions: ['READ', 'WRITE'],
        resourceTypes: ['Condition'],
        includeRestricted: true,
      });
      const { id } = await create(condition('44054006', true));
      const lower = {
        ...condition('44054006'),
        meta: { security: [{ system: CONFIDENTIALITY, code: 'N' }] },
      };
      expect(codes(await update(id, lower, 1, dr))).toEqual(['FORBIDDEN']);
      expect(await versionRows(id)).toBe(0);
    });

    it('lets a clinician create a record only under a WRITE grant that covers it, logged', async () => {
      const CREATE_FOR = `mutation($input: CreateRecordInput!) { createRecord(input: $input) {
        id patientId integrity } }`;
      const createFor = (token: string, resource: Record<string, unknown>, patientId?: string) =>
        api.gql<{ createRecord: { id: string; patientId: string; integrity: string } }>(
          CREATE_FOR,
          { input: { resource, ...(patientId ? { patientId } : {}) } },
          token,
        );
      const count = async () =>
        Number(
          (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [aliceId]))
            .rows[0].count,
        );
      const before = await count();
      // No grant, a READ grant, no patient named: nothing is written.
      const none = await api.token('dr-create-none', 'CLINICIAN');
      expect(codes(await createFor(none, observation('8310-5', 36.9), aliceId))).toEqual([
        'CONSENT_REQUIRED',
      ]);
      const reader = await api.token('dr-create-read', 'CLINICIAN');
      await api.grantRead(alice, 'dr-create-read');
      expect(codes(await createFor(reader, observation('8310-5', 36.9), aliceId))).toEqual([
        'CONSENT_REQUIRED',
      ]);
      const writer = await api.token('dr-create-write', 'CLINICIAN');
      const grantId = await api.grantRead(alice, 'dr-create-write', {
        actions: ['WRITE'],
        resourceTypes: ['Observation'],
      });
      expect(codes(await createFor(writer, observation('8310-5', 36.9)))).toEqual([
        'BAD_USER_INPUT',
      ]);
      // The grant covers Observations, not Conditions.
      expect(codes(await createFor(writer, condition(), aliceId))).toEqual(['CONSENT_REQUIRED']);
      expect(await count()).toBe(before);

      const res = await createFor(writer, observation('8310-5', 36.9), aliceId);
      expect(res.errors).toBeUndefined();
      expect(res.data!.createRecord).toMatchObject({ patientId: aliceId, integrity: 'VERIFIED' });
      expect(await count()).toBe(before + 1);
      const { rows } = await api.db.query(
        `SELECT action, decision, consent_id FROM access_events
         WHERE actor_id = 'dr-create-write' AND decision = 'PERMIT'`,
      );
      expect(rows).toEqual([{ action: 'WRITE', decision: 'PERMIT', consent_id: grantId }]);
      // The patient sees it as theirs.
      expect((await history(res.data!.createRecord.id)).data!.recordHistory).toHaveLength(1);
    });

    it('refuses a grantee who files a record under another category than its own', async () => {
      const CREATE_LABELLED = `mutation($input: CreateRecordInput!) { createRecord(input: $input) {
        id category } }`;
      const vitals = await api.token('dr-vitals-writer', 'CLINICIAN');
      await api.grantRead(alice, 'dr-vitals-writer', {
        actions: ['WRITE'],
        resourceTypes: ['Observation'],
        categories: ['vital-signs'],
      });
      const filed = (token: string, resource: Record<string, unknown>, category?: string) =>
        api.gql<{ createRecord: { id: string; category: string } }>(
          CREATE_LABELLED,
          { input: { resource, patientId: aliceId, ...(category ? { category } : {}) } },
          token,
        );
      const before = Number(
        (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [aliceId]))
          .rows[0].count,
      );
      // A lab result is outside the grant, and relabelling it as vital-signs does not bring
      // it inside: the grant's category scope would no longer hold.
      expect(codes(await filed(vitals, observation('2345-7', 5.1)))).toEqual(['CONSENT_REQUIRED']);
      expect(codes(await filed(vitals, observation('2345-7', 5.1), 'vital-signs'))).toEqual([
        'FORBIDDEN',
      ]);
      // Nor may a vital sign be filed under another category the grantee makes up.
      expect(codes(await filed(vitals, vitalSign(), 'social-history'))).toEqual(['FORBIDDEN']);
      expect(
        Number(
          (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [aliceId]))
            .rows[0].count,
        ),
      ).toBe(before);
      // Nor through an import, by the category tag an export writes.
      const tagged = {
        ...observation('2345-7', 5.1),
        meta: { tag: [{ system: 'urn:custodia:record-category', code: 'vital-signs' }] },
      };
      const imported = await api.gql(
        `mutation($b: JSON!, $p: ID) { importBundle(bundle: $b, patientId: $p) { created } }`,
        {
          b: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: tagged }] },
          p: aliceId,
        },
        vitals,
      );
      expect(codes(imported)).toEqual(['FORBIDDEN']);
      expect(imported.errors![0].message).toContain('entry[0]');
      expect(
        Number(
          (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [aliceId]))
            .rows[0].count,
        ),
      ).toBe(before);
      // Naming its own category is fine; the patient may relabel their own records.
      const ok = await filed(vitals, vitalSign(), 'vital-signs');
      expect(ok.errors).toBeUndefined();
      expect(ok.data!.createRecord.category).toBe('vital-signs');
      const own = await filed(alice, observation('2345-7', 5.1), 'vital-signs');
      expect(own.errors).toBeUndefined();
      expect(own.data!.createRecord.category).toBe('vital-signs');
    });

    it('keeps the category the patient filed a record under through amendments; only the patient files it anew', async () => {
      const CREATE_FILED = `mutation($input: CreateRecordInput!) { createRecord(input: $input) {
        id category } }`;
      const REFILE = `mutation($id: ID!, $r: JSON!, $v: Int!, $c: String) {
        updateRecord(id: $id, resource: $r, expectedVersion: $v, category: $c) { version category } }`;
      const refile = (id: string, r: unknown, v: number, c: string | null, token: string) =>
        api.gql<{ updateRecord: { version: number; category: string } }>(
          REFILE,
          { id, r, v, c },
          token,
        );
      const { id } = (
        await api.ok<{ createRecord: { id: string; category: string } }>(
          CREATE_FILED,
          { input: { resource: observation('2345-7', 5.2), category: 'psych' } },
          alice,
        )
      ).createRecord;
      const writer = await api.token('dr-any-writer', 'CLINICIAN');
      await api.grantRead(alice, 'dr-any-writer', { actions: ['READ', 'WRITE'] });
      const labReader = await api.token('dr-lab-reader', 'CLINICIAN');
      await api.grantRead(alice, 'dr-lab-reader', { categories: ['laboratory'] });
      const read = (token: string) =>
        api.gql(`query($id: ID!) { record(id: $id) { id category } }`, { id }, token);
      expect(codes(await read(labReader))).toEqual(['NOT_FOUND']);

      // The same content amended, by a grantee and by the patient: still filed as psych.
      const byWriter = await update(id, observation('2345-7', 5.3), 1, writer);
      expect(byWriter.errors).toBeUndefined();
      expect(byWriter.data!.updateRecord).toMatchObject({ version: 2, category: 'psych' });
      const byAlice = await update(id, observation('2345-7', 5.4), 2);
      expect(byAlice.data!.updateRecord).toMatchObject({ version: 3, category: 'psych' });
      expect(codes(await read(labReader))).toEqual(['NOT_FOUND']);

      // A grantee may not file it anew under another category than its content's...
      expect(codes(await refile(id, observation('2345-7', 5.5), 3, 'laboratory', writer))).toEqual(
        [],
      );
      const psychAgain = await refile(id, observation('2345-7', 5.5), 4, 'psych', writer);
      expect(codes(psychAgain)).toEqual(['FORBIDDEN']);
      // ...the patient may.
      const byPatient = await refile(id, observation('2345-7', 5.6), 4, 'psych', alice);
      expect(byPatient.data!.updateRecord).toMatchObject({ version: 5, category: 'psych' });
      expect(codes(await refile(id, observation('2345-7'), 5, 'no spaces', alice))).toEqual([
        'BAD_USER_INPUT',
      ]);
    });

    it('never surfaces a Condition’s history under a grant for Observations only', async () => {
      const dr = await api.token('dr-obs', 'CLINICIAN');
      await api.grantRead(alice, 'dr-obs', { resourceTypes: ['Observation'] });
      expect(codes(await history(condId, dr))).toEqual(['NOT_FOUND']);
      expect((await history(obsId, dr)).data!.recordHistory.map((v) => v.version)).toEqual([2, 1]);
    });

    it('leaves out a version whose labels the grant does not cover', async () => {
      const { id } = await create(observation('8867-4', 70));
      // Version 2 moves from laboratory to vital signs.
      const vital = {
        ...observation('8867-4', 72),
        category: [
          {
            coding: [
              {
                system: 'http://terminology.hl7.org/CodeSystem/observation-category',
                code: 'vital-signs',
              },
            ],
          },
        ],
      };
      expect((await update(id, vital, 1)).errors).toBeUndefined();
      const dr = await api.token('dr-vitals', 'CLINICIAN');
      await api.grantRead(alice, 'dr-vitals', { categories: ['vital-signs'] });
      expect((await history(id, dr)).data!.recordHistory.map((v) => v.version)).toEqual([2]);
    });

    it("refuses a patient another patient's record", async () => {
      const bob = await api.token('bob', 'PATIENT');
      await api.ok(REGISTER, {}, bob);
      expect(codes(await update(obsId, observation(), 2, bob))).toEqual(['NOT_FOUND']);
      expect(codes(await history(obsId, bob))).toEqual(['NOT_FOUND']);
    });
  });

  describe('tampering', () => {
    it('withholds a forged old version and still verifies the rest', async () => {
      const { id } = await create(observation('2093-3', 180));
      await update(id, observation('2093-3', 170), 1);
      await update(id, observation('2093-3', 160), 2);
      // A database writer puts version 3's ciphertext into version 1's row.
      await api.db.query(
        `UPDATE record_versions v SET iv = r.iv, auth_tag = r.auth_tag, ciphertext = r.ciphertext
         FROM records r WHERE r.id = v.record_id AND v.record_id = $1 AND v.version = 1`,
        [id],
      );
      const res = await history(id);
      expect(res.data!.recordHistory.map((v) => [v.version, v.integrity])).toEqual([
        [3, 'VERIFIED'],
        [2, 'VERIFIED'],
      ]);
      expect(codes(res)).toEqual(['INTERNAL']);
      expect(res.errors![0].message).toContain(id);
    });

    it('judges an old version by the ledger, never by its stored hash and anchor columns', async () => {
      const { id } = await create(observation('2093-3', 200));
      await update(id, observation('2093-3', 190), 1);
      await api.db.query(
        `UPDATE record_versions SET content_hash = repeat('a', 64), anchored_hash = repeat('a', 64),
           ledger_tx_id = 'forged' WHERE record_id = $1`,
        [id],
      );
      const list = (await history(id)).data!.recordHistory;
      // Integrity is the recomputed hash against the ledger's anchor, never these columns.
      expect(list.map((v) => v.integrity)).toEqual(['VERIFIED', 'VERIFIED']);
      expect(list[1].ledgerTxId).not.toBe('forged');
    });
    it('reports a record rolled back to an older version, which the ledger knows is not the newest', async () => {
      const { id } = await create(observation('2093-3', 210));
      await update(id, observation('2093-3', 220), 1);
      // A database writer restores version 1 as the current row and drops its copy.
      await api.db.query(
        `UPDATE records r SET version = v.version, iv = v.iv, auth_tag = v.auth_tag,
           ciphertext = v.ciphertext, content_hash = v.content_hash, category = v.category,
           sensitivity = v.sensitivity, key_id = v.key_id
         FROM record_versions v WHERE v.record_id = r.id AND r.id = $1 AND v.version = 1`,
        [id],
      );
      await api.db.query('DELETE FROM record_versions WHERE record_id = $1', [id]);
      const res = await history(id);
      // Version 1's content is as anchored, but it is not the record any more: the retracted
      // value must not read as verified.
      expect(res.data!.recordHistory.map((v) => [v.version, v.integrity])).toEqual([
        [1, 'MISMATCH'],
      ]);
      expect(codes(res)).toEqual(['INTERNAL']);
      expect(res.errors![0].message).toContain(`Record ${id}: version(s) 2 `);
      // Read as the record, in a listing and checked: the same, in this process (which
      // anchored version 2) and in a fresh one (which asks the ledger).
      const judged = async () => {
        const one = await api.ok<{ record: { version: number; integrity: string } }>(
          'query($id: ID!) { record(id: $id) { version integrity } }',
          { id },
          alice,
        );
        const listed = await api.ok<{ records: { items: { id: string; integrity: string }[] } }>(
          'query($p: ID!) { records(patientId: $p, first: 100) { items { id integrity } } }',
          { p: aliceId },
          alice,
        );
        const checked = await api.ok<{ verifyRecord: { status: string } }>(
          'query($id: ID!) { verifyRecord(id: $id) { status } }',
          { id },
          alice,
        );
        return [
          one.record.integrity,
          listed.records.items.find((r) => r.id === id)!.integrity,
          checked.verifyRecord.status,
        ];
      };
      expect(await judged()).toEqual(['MISMATCH', 'MISMATCH', 'MISMATCH']);
      await api.restart();
      expect(await judged()).toEqual(['MISMATCH', 'MISMATCH', 'MISMATCH']);
    });
  });

  describe('concurrency', () => {
    it('knows a new data key as live only once the transaction that made it commits', async () => {
      const token = await api.token('eve-key-in-flight', 'PATIENT');
      const { id: patientId } = (
        await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, token)
      ).registerPatient;
      const ring = api.server.app.get(DataKeyRing);
      expect(ring.knownLiveKey(patientId)).toBeUndefined();
      let inFlight: unknown = 'not asked';
      await api.server.app.get(DataSource).transaction(async (m) => {
        await ring.liveKey(patientId, m);
        // Another request now would write under a key no other connection can see yet; asked
        // again in the same transaction, the key is still this transaction's own.
        await ring.liveKey(patientId, m);
        inFlight = ring.knownLiveKey(patientId);
      });
      expect(inFlight).toBeUndefined();
      await api.ok(CREATE, { input: { resource: observation('2345-7', 5.2) } }, token);
      expect(ring.knownLiveKey(patientId)).toBeDefined();
    });

    it("stores every one of a new patient's first writes made at once", async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ resource: observation('4548-4', 6.1, '%') }],
      };
      const IMPORT = `mutation($b: JSON!) { importBundle(bundle: $b) { created } }`;
      // Several new patients: two first writes racing for the patient's first data key is a
      // matter of timing.
      for (let attempt = 0; attempt < 4; attempt++) {
        const token = await api.token(`eve-at-once-${attempt}`, 'PATIENT');
        const { id: patientId } = (
          await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, token)
        ).registerPatient;
        const results = await Promise.all([
          ...Array.from({ length: 6 }, (_, i) =>
            api.gql(CREATE, { input: { resource: observation('2345-7', 5 + i / 10) } }, token),
          ),
          api.gql(IMPORT, { b: bundle }, token),
          // An entry with a fullUrl takes an id derived from the patient's key (the one it
          // proposes, for a first write): when another write's key wins, it imports again.
          api.gql(
            IMPORT,
            {
              b: {
                ...bundle,
                entry: [{ ...bundle.entry[0], fullUrl: `urn:uuid:${randomUUID()}` }],
              },
            },
            token,
          ),
        ]);
        expect(results.map((r) => r.errors ?? [])).toEqual(results.map(() => []));
        const { rows } = await api.db.query(
          `SELECT (SELECT count(*)::int FROM records WHERE patient_id = $1) AS records,
             (SELECT count(*)::int FROM data_keys WHERE patient_id = $1) AS keys`,
          [patientId],
        );
        expect(rows[0]).toEqual({ records: 8, keys: 1 });
      }
    });

    it('erases a patient while amendments of their record race it', async () => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const token = await api.token(`erin-racing-${attempt}`, 'PATIENT');
        const { id: patientId } = (
          await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, token)
        ).registerPatient;
        const { id } = await create(observation('4548-4', 6, '%'), token);
        let erased = false;
        const amend = async () => {
          // Until the erasure commits: each answer is a new version, a CONFLICT with another
          // amendment, or (once erased) NOT_FOUND; never INTERNAL.
          while (!erased) {
            const now = await api.gql<{ record: { version: number } }>(
              `query($id: ID!) { record(id: $id) { version } }`,
              { id },
              token,
            );
            if (!now.data?.record) return;
            const res = await update(
              id,
              observation('4548-4', 7, '%'),
              now.data.record.version,
              token,
            );
            for (const code of codes(res)) expect(['CONFLICT', 'NOT_FOUND']).toContain(code);
          }
        };
        const amending = [amend(), amend(), amend()];
        // Once the amendments are under way.
        await update(id, observation('4548-4', 6.5, '%'), 1, token).catch(() => undefined);
        const res = await api.gql(ERASE, {}, token);
        erased = true;
        await Promise.all(amending);
        expect(res.errors).toBeUndefined();
        const { rows } = await api.db.query(
          `SELECT (SELECT count(*)::int FROM records WHERE patient_id = $1) AS records,
             (SELECT count(*)::int FROM data_keys
               WHERE patient_id = $1 AND destroyed_at IS NULL) AS live_keys`,
          [patientId],
        );
        expect(rows[0]).toEqual({ records: 0, live_keys: 0 });
      }
    });
  });

  describe('erasure', () => {
    it('shreds every version', async () => {
      const carol = await api.token('carol', 'PATIENT');
      const carolId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, carol))
        .registerPatient.id;
      const { id } = await create(
        { ...observation('4548-4'), code: { coding: [{ system: LOINC, code: '4548-4' }] } },
        carol,
      );
      await update(id, observation('4548-4', 6), 1, carol);
      await update(id, observation('4548-4', 7), 2, carol);
      expect(await versionRows(id)).toBe(2);
      await api.ok(ERASE, {}, carol);
      expect(await versionRows(id)).toBe(0);
      const { rows } = await api.db.query(
        `SELECT count(*)::int AS n FROM records WHERE patient_id = $1`,
        [carolId],
      );
      expect(rows[0].n).toBe(0);
    });
  });
});
