// Erasure, on either ledger (test/erasure.e2e-spec.ts: embedded; test/fabric: Fabric).
import { Pool } from 'pg';
import { chainedEventFromRow, findBreak } from '../../src/audit';
import { verifyAll } from '../../src/verification';
import { LEDGER, Ledger } from '../../src/ledger';
import { erasePatientRows } from '../../src/erasure';
import { DataKeyRing } from '../../src/records/crypto';
import { condition, observation } from '../helpers/fhir';
import { corpusBundle } from '../helpers/fhir-bundle';
import { itNeeds, LedgerUnderTest } from '../helpers/ledger-under-test';
import { codes, TestApi } from '../helpers/test-api';

const ERASE = 'mutation($c: Boolean!) { eraseMyData(confirm: $c) }';
const LIST = 'query($p: ID!) { records(patientId: $p) { items { id } } }';

export function erasureSuite(ledger: LedgerUnderTest): void {
  describe(`erasure (${ledger.name} ledger)`, () => {
    let api: TestApi;
    let patient: string;
    let patientId: string;
    let doctor: string;
    let grantId: string;
    let recordIds: string[];

    beforeAll(async () => {
      api = await ledger.startApi();
      patient = await api.token('erin', 'PATIENT');
      doctor = await api.token('dr-eve', 'CLINICIAN');
      patientId = (
        await api.ok<{ registerPatient: { id: string } }>(
          'mutation { registerPatient(displayName: "Erin") { id } }',
          {},
          patient,
        )
      ).registerPatient.id;
      recordIds = [];
      for (const r of [observation(), condition()]) {
        recordIds.push(
          (
            await api.ok<{ createRecord: { id: string } }>(
              'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }',
              { r },
              patient,
            )
          ).createRecord.id,
        );
      }
      grantId = (
        await api.ok<{ grantConsent: { id: string } }>(
          `mutation { grantConsent(input: {granteeType: CLINICIAN, granteeId: "dr-eve",
           purpose: TREATMENT, actions: [READ]}) { id } }`,
          {},
          patient,
        )
      ).grantConsent.id;
      expect(
        (await api.ok<{ records: { items: unknown[] } }>(LIST, { p: patientId }, doctor)).records
          .items,
      ).toHaveLength(2);
      await api.ok(LIST, { p: patientId }, patient);
    });
    afterAll(() => api?.stop());

    it('asks for confirmation and changes nothing without it', async () => {
      const res = await api.gql(ERASE, { c: false }, patient);
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(
        (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [patientId]))
          .rows[0].count,
      ).toBe('2');
    });

    it('leaves nothing readable, revokes every grant on the ledger and keeps the audit chain', async () => {
      const eventsBefore = Number(
        (await api.db.query('SELECT count(*) FROM access_events')).rows[0].count,
      );
      expect(
        (await api.ok<{ eraseMyData: boolean }>(ERASE, { c: true }, patient)).eraseMyData,
      ).toBe(true);

      // Nothing of theirs can be read, by anyone.
      expect(codes(await api.gql(LIST, { p: patientId }, doctor))).toEqual(['CONSENT_REQUIRED']);
      for (const id of recordIds) {
        expect(
          codes(await api.gql('query($id: ID!) { record(id: $id) { id } }', { id }, doctor)),
        ).toEqual(['NOT_FOUND']);
      }
      expect(
        (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [patientId]))
          .rows[0].count,
      ).toBe('0');
      const keys = await api.db.query(
        'SELECT wrapped_key, destroyed_at FROM data_keys WHERE patient_id = $1',
        [patientId],
      );
      expect(keys.rows.length).toBeGreaterThan(0);
      for (const k of keys.rows)
        expect(k).toMatchObject({ wrapped_key: null, destroyed_at: expect.any(Date) });
      const profile = await api.db.query(
        'SELECT display_name_sealed, erased_at FROM patients WHERE id = $1',
        [patientId],
      );
      expect(profile.rows[0]).toMatchObject({
        display_name_sealed: null,
        erased_at: expect.any(Date),
      });

      // Their grants are revoked on the ledger itself, not only here.
      const port = api.server.app.get<Ledger>(LEDGER);
      await expect(port.evaluate('consent', 'GetConsent', [grantId])).resolves.toMatchObject({
        status: 'REVOKED',
      });

      // The account is unlinked; the audit chain is whole and kept.
      const me = await api.ok<{ me: { patientId: string | null } }>(
        '{ me { patientId } }',
        {},
        patient,
      );
      expect(me.me.patientId).toBeNull();
      const { rows } = await api.db.query('SELECT * FROM access_events ORDER BY seq');
      expect(rows.length).toBeGreaterThanOrEqual(eventsBefore);
      expect(findBreak('0'.repeat(64), rows.map(chainedEventFromRow))).toBeNull();
      // Every access before erasure is still justified by the ledger, the patient's own included.
      const admin = await api.token('admin-1', 'ADMIN');
      const check = await api.ok<{
        verifyAccessLog: { ok: boolean; permitsJustified: number; problems: string[] };
      }>(
        'query($p: ID!) { verifyAccessLog(patientId: $p) { ok permitsJustified problems } }',
        { p: patientId },
        admin,
      );
      expect(check.verifyAccessLog).toMatchObject({ ok: true, problems: [] });
      expect(check.verifyAccessLog.permitsJustified).toBeGreaterThan(0);
    });

    it('lets the erased account register again, as a new patient with nothing of the old', async () => {
      const again = await api.gql<{ registerPatient: { id: string; displayName: string } }>(
        'mutation { registerPatient(displayName: "Erin again") { id displayName } }',
        {},
        patient,
      );
      expect(again.errors).toBeUndefined();
      const newId = again.data!.registerPatient.id;
      expect(newId).not.toBe(patientId);
      expect(again.data!.registerPatient.displayName).toBe('Erin again');
      // Registering once more answers the same profile; the old one stays erased and unreadable.
      const same = await api.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        patient,
      );
      expect(same.registerPatient.id).toBe(newId);
      const me = await api.ok<{ me: { patientId: string } }>('{ me { patientId } }', {}, patient);
      expect(me.me.patientId).toBe(newId);
      expect(
        (await api.ok<{ records: { items: unknown[] } }>(LIST, { p: newId }, patient)).records
          .items,
      ).toEqual([]);
      expect(codes(await api.gql(LIST, { p: patientId }, patient))).toEqual(['CONSENT_REQUIRED']);
      expect(codes(await api.gql(LIST, { p: newId }, doctor))).toEqual(['CONSENT_REQUIRED']);
    });

    itNeeds(
      ledger,
      'chain-in-database',
      'passes verify-ledger after erasure, every access before it justified',
      async () => {
        const pool = new Pool({ connectionString: api.config.databaseUrl, max: 1 });
        try {
          const result = await verifyAll(pool, 'org1');
          expect(result.lines.join('\n')).not.toContain('BROKEN');
          expect(result.lines.join('\n')).toMatch(/Permitted accesses: (\d+) of \1 justified/);
        } finally {
          await pool.end();
        }
      },
      () => api,
    );

    it('stores nothing for a write racing an erasure made through another process', async () => {
      const CREATE = 'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }';
      const count = async (id: string) =>
        (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [id])).rows[0]
          .count;
      // Another process erases the patient exactly as eraseMyData does, while this one still
      // knows them (and, for `cold`, not their data key: its first write takes the slow path).
      const eraseElsewhere = async (id: string) => {
        await api.db.query('BEGIN');
        await erasePatientRows((text, params) => api.db.query(text, params), id);
        await api.db.query('COMMIT');
      };
      const IMPORT = 'mutation($b: JSON!) { importBundle(bundle: $b) { created } }';
      for (const [who, cold, write] of [
        ['ray', false, () => ({ query: CREATE, variables: { r: observation() } })],
        ['rita', true, () => ({ query: CREATE, variables: { r: observation() } })],
        ['rosa', true, () => ({ query: IMPORT, variables: { b: corpusBundle() } })],
      ] as const) {
        const { token, patientId: id } = await api.patientWithRecord(who);
        if (cold) api.server.app.get(DataKeyRing).forgetPatient(id);
        await eraseElsewhere(id);
        const { query, variables } = write();
        const res = await api.gql(query, variables, token);
        expect(codes(res)).toEqual(['NOT_FOUND']);
        expect(await count(id)).toBe('0');
        // The next write is refused too, and still nothing is stored.
        expect(codes(await api.gql(CREATE, { r: observation() }, token))).toEqual(['NOT_FOUND']);
        expect(await count(id)).toBe('0');
        expect(
          (
            await api.db.query(
              'SELECT count(*) FROM data_keys WHERE patient_id = $1 AND destroyed_at IS NULL',
              [id],
            )
          ).rows[0].count,
        ).toBe('0');
      }
    });

    it('leaves no grant standing that the patient made while their erasure ran, whichever lands when', async () => {
      const ledgerPort = api.server.app.get<Ledger>(LEDGER);
      const GRANT = `mutation($g: ID!) { grantConsent(input: {granteeType: CLINICIAN,
        granteeId: $g, purpose: TREATMENT, actions: [READ]}) { id } }`;
      const standing = async (id: string) =>
        (await ledgerPort.evaluate<{ status: string }>('consent', 'GetConsent', [id])).status;

      // Landing between erasure's first look at the ledger and the profile's erasure: its
      // second look revokes it.
      const early = await api.token('erin-early', 'PATIENT');
      const earlyId = (
        await api.ok<{ registerPatient: { id: string } }>(
          'mutation { registerPatient { id } }',
          {},
          early,
        )
      ).registerPatient.id;
      const evaluate = ledgerPort.evaluate.bind(ledgerPort);
      let between: string | undefined;
      let looked = false;
      const spy = jest.spyOn(ledgerPort, 'evaluate').mockImplementation(async (c, fn, args) => {
        const answer = await evaluate(c, fn, args);
        if (fn === 'ListConsentsByPatient' && !looked) {
          looked = true;
          const res = await api.gql<{ grantConsent: { id: string } }>(
            GRANT,
            { g: 'dr-early' },
            early,
          );
          if (res.errors) throw new Error(JSON.stringify(res.errors));
          between = res.data!.grantConsent.id;
        }
        return answer as never;
      });
      try {
        await api.ok(ERASE, { c: true }, early);
      } finally {
        spy.mockRestore();
      }
      expect(await standing(between!)).toBe('REVOKED');
      expect(earlyId).toBeDefined();

      // Landing after erasure finished, from a request that found the profile before: it sees
      // the erasure and revokes its own grant.
      const late = await api.token('erin-late', 'PATIENT');
      await api.ok('mutation { registerPatient { id } }', {}, late);
      const submit = ledgerPort.submit.bind(ledgerPort);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let reached!: () => void;
      const atLedger = new Promise<void>((resolve) => (reached = resolve));
      const hold = jest.spyOn(ledgerPort, 'submit').mockImplementation(async (c, fn, args) => {
        if (fn === 'GrantConsent') {
          reached();
          await held;
        }
        return submit(c, fn, args) as never;
      });
      let lateGrant: Awaited<ReturnType<typeof api.gql<{ grantConsent: { id: string } }>>>;
      try {
        const granting = api.gql<{ grantConsent: { id: string } }>(GRANT, { g: 'dr-late' }, late);
        await atLedger;
        hold.mockImplementation(submit as never);
        await api.ok(ERASE, { c: true }, late);
        release();
        lateGrant = await granting;
      } finally {
        hold.mockRestore();
      }
      expect(codes(lateGrant)).toEqual(['NOT_FOUND']);
      expect(lateGrant.errors![0].message).toContain('erased');
      const all = await ledgerPort.evaluate<
        { patientId: string; status: string; grantee: { id: string } }[]
      >('consent', 'ListConsentsByGrantee', ['CLINICIAN', 'dr-late']);
      expect(all.map((g) => g.status)).toEqual(['REVOKED']);
    });

    it('refuses break-glass on an erased patient', async () => {
      const res = await api.gql(
        'mutation($p: ID!) { declareEmergency(patientId: $p, reason: "Unconscious in the ER") { id } }',
        { p: patientId },
        doctor,
      );
      expect(codes(res)).toEqual(['NOT_FOUND']);
    });
  });
}
