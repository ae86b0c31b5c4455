// Patient records over GraphQL, on either ledger (test/records.e2e-spec.ts: embedded;
// test/fabric: Fabric).
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import { codes, TestApi } from '../helpers/test-api';
import { condition, observation, vitalSign } from '../helpers/fhir';
import { corpusResource, FHIR_VARIANTS } from '../helpers/fhir-corpus';

const REGISTER = `mutation($name: String) { registerPatient(displayName: $name) {
  id displayName organizationId allowEmergencyAccess createdAt } }`;
const CREATE = `mutation($input: CreateRecordInput!) { createRecord(input: $input) {
  id patientId resourceType category sensitivity resource version contentHash integrity
  ledgerTxId createdAt updatedAt } }`;
const LIST = `query($p: ID!, $type: String, $cat: String, $first: Int, $after: String) {
  records(patientId: $p, resourceType: $type, category: $cat, first: $first, after: $after) {
    items { id resourceType category sensitivity resource integrity } nextCursor } }`;
const ONE = `query($id: ID!) { record(id: $id) { id resource integrity } }`;

type Rec = { id: string; resourceType: string; category: string | null; sensitivity: string };
type Page = { records: { items: Rec[]; nextCursor: string | null } };

export function recordsSuite(ledger: LedgerUnderTest): void {
  describe(`patient records over GraphQL (${ledger.name} ledger)`, () => {
    let api: TestApi;
    let alice: string;
    let aliceId: string;
    let bob: string;
    let bobId: string;

    beforeAll(async () => {
      api = await ledger.startApi();
      alice = await api.token('alice', 'PATIENT');
      bob = await api.token('bob', 'PATIENT');
      aliceId = (
        await api.ok<{ registerPatient: { id: string } }>(REGISTER, { name: 'Alice' }, alice)
      ).registerPatient.id;
      bobId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, bob)).registerPatient
        .id;
    });
    afterAll(() => api?.stop());

    const create = (input: Record<string, unknown>, token = alice) =>
      api.gql<{ createRecord: Rec & Record<string, unknown> }>(CREATE, { input }, token);
    const count = async (patientId: string) =>
      Number(
        (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [patientId]))
          .rows[0].count,
      );

    describe('registration', () => {
      it('is idempotent and links the profile to the token subject', async () => {
        const again = await api.ok<{ registerPatient: { id: string; displayName: string } }>(
          REGISTER,
          {},
          alice,
        );
        expect(again.registerPatient).toMatchObject({ id: aliceId, displayName: 'Alice' });
        const me = await api.ok<{ me: unknown }>(
          '{ me { id roles organizationId patientId } }',
          {},
          alice,
        );
        expect(me.me).toEqual({
          id: 'alice',
          roles: ['PATIENT'],
          organizationId: null,
          patientId: aliceId,
        });
      });

      it('keeps the display name encrypted at rest', async () => {
        const { rows } = await api.db.query(
          'SELECT display_name_sealed FROM patients WHERE id = $1',
          [aliceId],
        );
        expect(rows[0].display_name_sealed).toBeInstanceOf(Buffer);
        expect(rows[0].display_name_sealed.toString('latin1')).not.toContain('Alice');
      });

      it('shows a patient their own profile and no one else its existence', async () => {
        const q = 'query($id: ID!) { patient(id: $id) { id displayName allowEmergencyAccess } }';
        expect((await api.ok<{ patient: unknown }>(q, { id: aliceId }, alice)).patient).toEqual({
          id: aliceId,
          displayName: 'Alice',
          allowEmergencyAccess: true,
        });
        expect(codes(await api.gql(q, { id: aliceId }, bob))).toEqual(['NOT_FOUND']);
      });

      it('lets a patient turn emergency access off and on', async () => {
        const q =
          'mutation($a: Boolean!) { setEmergencyAccess(allow: $a) { id allowEmergencyAccess } }';
        expect(
          (await api.ok<{ setEmergencyAccess: unknown }>(q, { a: false }, alice))
            .setEmergencyAccess,
        ).toEqual({
          id: aliceId,
          allowEmergencyAccess: false,
        });
        await api.ok(q, { a: true }, alice);
      });

      it('refuses registration to non-patients and to unknown organisations', async () => {
        const doc = await api.token('dr-who', 'CLINICIAN');
        expect(codes(await api.gql(REGISTER, {}, doc))).toEqual(['FORBIDDEN']);
        const carol = await api.token('carol', 'PATIENT');
        const res = await api.gql(
          'mutation { registerPatient(organizationId: "nowhere") { id } }',
          {},
          carol,
        );
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors?.[0].extensions.field).toBe('organizationId');
      });
    });

    describe('creating records', () => {
      it('stores a valid resource, binds it to the owner and derives its category', async () => {
        const res = await create({ resource: observation() });
        expect(res.errors).toBeUndefined();
        const r = res.data!.createRecord;
        expect(r).toMatchObject({
          patientId: aliceId,
          resourceType: 'Observation',
          category: 'laboratory',
          sensitivity: 'NORMAL',
          version: 1,
          integrity: 'VERIFIED',
        });
        expect(r.ledgerTxId).toMatch(/^[0-9a-f]{64}$/);
        expect(r.resource).toMatchObject({ subject: { reference: `Patient/${aliceId}` } });
        expect(r.contentHash).toMatch(/^[0-9a-f]{64}$/);
      });

      it('keeps no plaintext at rest', async () => {
        const { rows } = await api.db.query(
          'SELECT ciphertext FROM records WHERE patient_id = $1',
          [aliceId],
        );
        expect(rows.length).toBeGreaterThan(0);
        for (const row of rows) {
          expect(row.ciphertext.toString('latin1')).not.toContain('2345-7');
          expect(row.ciphertext.toString('latin1')).not.toContain('Observation');
        }
      });

      it('marks records labelled R or V restricted, and honours a given sensitivity', async () => {
        expect(
          (await create({ resource: condition('44054006', true) })).data!.createRecord.sensitivity,
        ).toBe('RESTRICTED');
        expect(
          (await create({ resource: condition('38341003'), sensitivity: 'RESTRICTED' })).data!
            .createRecord.sensitivity,
        ).toBe('RESTRICTED');
        expect(
          (await create({ resource: condition('38341003'), category: 'encounter-diagnosis' })).data!
            .createRecord,
        ).toMatchObject({ category: 'encounter-diagnosis', sensitivity: 'NORMAL' });
      });

      it.each([
        [
          'invalid FHIR',
          { resource: { resourceType: 'Observation', status: 'final' } },
          'input.resource.code',
        ],
        [
          'an unknown resource type',
          { resource: { resourceType: 'Starship' } },
          'input.resource.resourceType',
        ],
        ['a non-object resource', { resource: 'Observation' }, 'input.resource'],
        [
          'a subject naming another patient',
          { resource: { ...observation(), subject: { reference: 'Patient/someone-else' } } },
          'input.resource.subject',
        ],
        [
          'a malformed category',
          { resource: observation(), category: 'no spaces allowed' },
          'input.category',
        ],
      ])('rejects %s with BAD_USER_INPUT and stores nothing', async (_what, input, field) => {
        const before = await count(aliceId);
        const res = await create(input);
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors?.[0].extensions.field).toBe(field);
        expect(await count(aliceId)).toBe(before);
      });

      it('rejects a 2 MB body and stores nothing', async () => {
        const before = await count(aliceId);
        const huge = { ...observation(), note: [{ text: 'x'.repeat(2 * 1024 * 1024) }] };
        const res = await api.post(
          JSON.stringify({ query: CREATE, variables: { input: { resource: huge } } }),
          alice,
        );
        expect(res.status).toBe(413);
        expect(
          ((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]
            .extensions.code,
        ).toBe('BAD_USER_INPUT');
        expect(await count(aliceId)).toBe(before);
      });

      it("refuses to write into another patient's records", async () => {
        const res = await create({ patientId: bobId, resource: observation() });
        expect(codes(res)).toEqual(['CONSENT_REQUIRED']);
        expect(await count(bobId)).toBe(0);
      });

      it('asks an unregistered patient to register first', async () => {
        const dave = await api.token('dave', 'PATIENT');
        const res = await create({ resource: observation() }, dave);
        expect(codes(res)).toEqual(['NOT_FOUND']);
        expect(res.errors?.[0].message).toMatch(/registerPatient/);
      });
    });

    describe('real FHIR R4 data', () => {
      // From ../shared/data/fhir-r4/valid: a Synthea Observation, an HL7 MedicationRequest with a
      // contained Medication and a narrative, and HL7's RiskAssessment that Medplum refused (ras-2).
      it.each([
        'synthea-Observation-1.json',
        'hl7-MedicationRequest-10.json',
        'hl7-RiskAssessment-2.json',
      ])(
        'stores %s as it is, bound to its owner, with the id and version meta the server gives',
        async (file) => {
          const resource = corpusResource(file);
          const res = await create({ resource });
          expect(res.errors).toBeUndefined();
          const owner = resource.resourceType === 'Immunization' ? 'patient' : 'subject';
          const stored = res.data!.createRecord;
          // As a FHIR server's create: the id is the record's, meta.versionId and lastUpdated
          // the server's; everything else, other meta included, as sent.
          expect(stored.resource).toEqual({
            ...resource,
            id: stored.id,
            meta: {
              ...((resource.meta as object | undefined) ?? {}),
              versionId: '1',
              lastUpdated: stored.createdAt,
            },
            [owner]: { reference: `Patient/${aliceId}` },
          });
        },
      );

      const picked = [
        'a Observation.status outside its required value set',
        'a Condition.clinicalStatus coded outside its required value set',
        'a local reference to a contained resource that is not there (ref-1)',
        'a <script> in the narrative',
        'an own __proto__ property',
      ];
      it.each(
        FHIR_VARIANTS.filter((v) => picked.includes(v.name)).map((v) => [v.name, v] as const),
      )(
        'rejects %s with BAD_USER_INPUT, names the path and stores nothing',
        async (_name, variant) => {
          const resource = corpusResource(variant.file);
          variant.mutate(resource);
          const before = await count(aliceId);
          const res = await create({ resource });
          expect(codes(res)).toEqual(['BAD_USER_INPUT']);
          const error = res.errors![0];
          expect(error.message).toContain(variant.mentions[0]);
          expect(JSON.stringify(res.errors)).not.toContain(variant.secret);
          expect(String(error.extensions.field)).toMatch(/^input\.resource\./);
          expect(await count(aliceId)).toBe(before);
        },
      );
    });

    describe('reading records', () => {
      let ids: string[] = [];

      beforeAll(async () => {
        await api.ok(REGISTER, {}, await api.token('pager', 'PATIENT'));
        const pager = await api.token('pager', 'PATIENT');
        ids = [];
        for (let i = 0; i < 25; i++) {
          const resource =
            i % 5 === 0
              ? condition()
              : i % 2
                ? vitalSign('8480-6', 100 + i)
                : observation('2345-7', i);
          ids.push((await create({ resource }, pager)).data!.createRecord.id);
        }
      });

      async function pages(token: string, patientId: string, vars: Record<string, unknown>) {
        const seen: Rec[] = [];
        let after: string | null = null;
        let n = 0;
        do {
          const page: Page = await api.ok<Page>(LIST, { p: patientId, ...vars, after }, token);
          seen.push(...page.records.items);
          after = page.records.nextCursor;
          n++;
        } while (after);
        return { seen, n };
      }

      it('pages through every record once, newest first', async () => {
        const pager = await api.token('pager', 'PATIENT');
        const me = await api.ok<{ me: { patientId: string } }>('{ me { patientId } }', {}, pager);
        const { seen, n } = await pages(pager, me.me.patientId, { first: 10 });
        expect(n).toBe(3);
        expect(seen.map((r) => r.id)).toEqual([...ids].reverse());
      });

      it('filters by resource type and category', async () => {
        const pager = await api.token('pager', 'PATIENT');
        const p = (await api.ok<{ me: { patientId: string } }>('{ me { patientId } }', {}, pager))
          .me.patientId;
        const conditions = (await pages(pager, p, { type: 'Condition', first: 2 })).seen;
        expect(conditions).toHaveLength(5);
        expect(conditions.every((r) => r.resourceType === 'Condition')).toBe(true);
        const vitals = (await pages(pager, p, { cat: 'vital-signs' })).seen;
        expect(vitals.length).toBeGreaterThan(0);
        expect(vitals.every((r) => r.category === 'vital-signs')).toBe(true);
      });

      it.each([
        [{ first: 0 }, 'first'],
        [{ first: 101 }, 'first'],
        [{ after: 'not-a-cursor' }, 'after'],
      ])('rejects bad paging input %j', async (vars, field) => {
        const res = await api.gql(LIST, { p: aliceId, ...vars }, alice);
        expect(codes(res)).toEqual(['BAD_USER_INPUT']);
        expect(res.errors?.[0].extensions.field).toBe(field);
      });

      it('reads one record by id', async () => {
        const first = (await api.ok<Page>(LIST, { p: aliceId, first: 1 }, alice)).records.items[0];
        const one = await api.ok<{ record: { id: string; integrity: string } }>(
          ONE,
          { id: first.id },
          alice,
        );
        expect(one.record).toMatchObject({ id: first.id, integrity: 'VERIFIED' });
      });

      it("answers CONSENT_REQUIRED to a patient listing another patient's records", async () => {
        const res = await api.gql(LIST, { p: aliceId }, bob);
        expect(codes(res)).toEqual(['CONSENT_REQUIRED']);
        expect(res.data).toBeNull();
      });

      it('answers CONSENT_REQUIRED to a clinician without consent', async () => {
        const doc = await api.token('dr-house', 'CLINICIAN', 'org1');
        expect(codes(await api.gql(LIST, { p: aliceId }, doc))).toEqual(['CONSENT_REQUIRED']);
      });

      it('never lets a researcher read records', async () => {
        const res = await api.gql(LIST, { p: aliceId }, await api.token('rita', 'RESEARCHER'));
        expect(codes(res)).toEqual(['FORBIDDEN']);
      });

      it("answers a foreign record's id exactly as a missing one", async () => {
        const first = (await api.ok<Page>(LIST, { p: aliceId, first: 1 }, alice)).records.items[0];
        const foreign = await api.gql(ONE, { id: first.id }, bob);
        const missing = await api.gql(ONE, { id: '00000000-0000-4000-8000-000000000000' }, bob);
        const garbage = await api.gql(ONE, { id: 'nope' }, bob);
        expect(codes(foreign)).toEqual(['NOT_FOUND']);
        expect(foreign.errors?.[0].message).toBe(missing.errors?.[0].message);
        expect(codes(garbage)).toEqual(['NOT_FOUND']);
      });
    });

    describe('tampering at rest', () => {
      let victimId: string;
      let victim: string;
      let recordId: string;

      beforeEach(async () => {
        victim = await api.token(`victim-${Date.now()}-${Math.random()}`, 'PATIENT');
        victimId = (await api.ok<{ registerPatient: { id: string } }>(REGISTER, {}, victim))
          .registerPatient.id;
        recordId = (await create({ resource: observation() }, victim)).data!.createRecord.id;
      });

      async function readsFailLoudly() {
        for (const res of [
          await api.gql(ONE, { id: recordId }, victim),
          await api.gql(LIST, { p: victimId }, victim),
        ]) {
          expect(codes(res)).toEqual(['INTERNAL']);
          expect(res.errors?.[0].message).toMatch(/failed its integrity check/);
          expect(JSON.stringify(res)).not.toContain('2345-7');
        }
      }

      it('fails loudly on a flipped bit in the ciphertext', async () => {
        await api.db.query(
          `UPDATE records SET ciphertext = overlay(ciphertext placing set_byte(substring(ciphertext from 5 for 1), 0,
           get_byte(ciphertext, 4) # 1) from 5 for 1) WHERE id = $1`,
          [recordId],
        );
        await readsFailLoudly();
      });

      it('fails loudly when a ciphertext is copied onto another record', async () => {
        const otherId = (await create({ resource: vitalSign() }, victim)).data!.createRecord.id;
        await api.db.query(
          `UPDATE records SET ciphertext = o.ciphertext, iv = o.iv, auth_tag = o.auth_tag
         FROM records o WHERE records.id = $1 AND o.id = $2`,
          [recordId, otherId],
        );
        const res = await api.gql(ONE, { id: recordId }, victim);
        expect(codes(res)).toEqual(['INTERNAL']);
      });

      it("fails loudly when the row's patient id is changed", async () => {
        // Move the victim's record to Bob: Bob can see the row but never its content.
        await api.db.query('UPDATE records SET patient_id = $2 WHERE id = $1', [recordId, bobId]);
        const res = await api.gql(ONE, { id: recordId }, bob);
        expect(codes(res)).toEqual(['INTERNAL']);
        expect(JSON.stringify(res)).not.toContain('2345-7');
      });
    });
  });
}
