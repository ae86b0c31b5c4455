// Patient consent and break-glass, on either ledger (test/consent.e2e-spec.ts: embedded;
// test/fabric: Fabric).
import { randomUUID } from 'node:crypto';
import { chainedEventFromRow, findBreak } from '../../src/audit';
import { ConsentProjection, ConsentProjector } from '../../src/consent';
import { REPLAY_AGE_MS } from '../../src/consent/consent.projector';
import { LEDGER, Ledger } from '../../src/ledger';
import { PatientsService } from '../../src/patients';
import { condition, observation } from '../helpers/fhir';
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import { codes, TestApi } from '../helpers/test-api';

const LIST = `query($p: ID!, $first: Int) { records(patientId: $p, first: $first) {
  items { id resourceType sensitivity } nextCursor } }`;
const ONE = `query($id: ID!) { record(id: $id) { id resourceType } }`;
const DECLARE_EMERGENCY = `mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) {
  id } }`;
const GRANT = `mutation($input: GrantConsentInput!) { grantConsent(input: $input) {
  id patientId grantee { type id } purpose actions resourceTypes categories includeRestricted
  validFrom validUntil status revokedAt ledgerTxId createdAt } }`;
const REVOKE = `mutation($id: ID!) { revokeConsent(id: $id) { id status revokedAt } }`;
const CONSENTS = `query($p: ID, $s: ConsentStatus) { consents(patientId: $p, status: $s) {
  id status grantee { type id } } }`;
const LOG = `query($p: ID!, $first: Int, $after: String) { accessLog(patientId: $p, first: $first, after: $after) {
  items { id actorId patientId recordIds action purpose decision consentId breakGlass reason at hash }
  nextCursor } }`;

type Grant = { id: string; status: string; ledgerTxId: string };
type Item = { id: string; resourceType: string; sensitivity: string };
type LogEvent = {
  actorId: string;
  recordIds: string[];
  decision: string;
  consentId: string | null;
  breakGlass: boolean;
  reason: string | null;
  purpose: string;
};

export function consentSuite(ledgerUnderTest: LedgerUnderTest): void {
  describe(`patient consent, end to end (${ledgerUnderTest.name} ledger)`, () => {
    let api: TestApi;
    let patient: string;
    let patientId: string;
    let doctor: string;
    let ids: { obs: string[]; cond: string; restricted: string };

    beforeAll(async () => {
      api = await ledgerUnderTest.startApi();
      patient = await api.token('pat', 'PATIENT');
      doctor = await api.token('dr-grey', 'CLINICIAN', 'org1');
      patientId = (
        await api.ok<{ registerPatient: { id: string } }>(
          'mutation { registerPatient { id } }',
          {},
          patient,
        )
      ).registerPatient.id;
      const make = async (resource: object) =>
        (
          await api.ok<{ createRecord: { id: string } }>(
            'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }',
            { r: resource },
            patient,
          )
        ).createRecord.id;
      ids = {
        obs: [await make(observation('2345-7', 5.1)), await make(observation('4548-4', 6.2))],
        cond: await make(condition()),
        restricted: await make({
          ...observation('39156-5', 31),
          meta: {
            security: [
              { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' },
            ],
          },
        }),
      };
    });
    afterAll(() => api?.stop());

    const grant = (input: Record<string, unknown>, token = patient) =>
      api.gql<{ grantConsent: Grant }>(GRANT, { input }, token);
    const treatment = (extra: Record<string, unknown> = {}) => ({
      granteeType: 'CLINICIAN',
      granteeId: 'dr-grey',
      purpose: 'TREATMENT',
      actions: ['READ'],
      ...extra,
    });
    const listAs = (token: string) =>
      api.gql<{ records: { items: Item[] } }>(LIST, { p: patientId, first: 50 }, token);

    it('walks the whole scenario: denied, granted for Observations, revoked, denied; all logged', async () => {
      expect(codes(await listAs(doctor))).toEqual(['CONSENT_REQUIRED']);

      const granted = await grant(treatment({ resourceTypes: ['Observation'] }));
      expect(granted.errors).toBeUndefined();
      const g = granted.data!.grantConsent;
      expect(g).toMatchObject({
        status: 'ACTIVE',
        patientId,
        grantee: { type: 'CLINICIAN', id: 'dr-grey' },
      });
      expect(g.ledgerTxId).toMatch(/^[0-9a-f]{64}$/);

      // The very next request sees the grant: Observations only, never the RESTRICTED one.
      const seen = (await listAs(doctor)).data!.records.items;
      expect(seen.map((r) => r.id).sort()).toEqual([...ids.obs].sort());
      expect(codes(await api.gql(ONE, { id: ids.cond }, doctor))).toEqual(['NOT_FOUND']);
      expect(codes(await api.gql(ONE, { id: ids.restricted }, doctor))).toEqual(['NOT_FOUND']);
      expect((await api.ok<{ record: Item }>(ONE, { id: ids.obs[0] }, doctor)).record.id).toBe(
        ids.obs[0],
      );

      const revoked = await api.ok<{ revokeConsent: { status: string; revokedAt: string } }>(
        REVOKE,
        { id: g.id },
        patient,
      );
      expect(revoked.revokeConsent.status).toBe('REVOKED');
      expect(codes(await listAs(doctor))).toEqual(['CONSENT_REQUIRED']);
      expect(codes(await api.gql(ONE, { id: ids.obs[0] }, doctor))).toEqual(['NOT_FOUND']);

      const log = (
        await api.ok<{ accessLog: { items: LogEvent[] } }>(
          LOG,
          { p: patientId, first: 100 },
          patient,
        )
      ).accessLog.items
        .filter((e) => e.actorId === 'dr-grey')
        .reverse();
      expect(log.map((e) => e.decision)).toEqual([
        'DENY',
        'PERMIT',
        'DENY',
        'DENY',
        'PERMIT',
        'DENY',
        'DENY',
      ]);
      expect(log[1]).toMatchObject({ consentId: g.id, breakGlass: false, purpose: 'TREATMENT' });
      expect(log[1].recordIds.sort()).toEqual([...ids.obs].sort());

      const { rows } = await api.db.query('SELECT * FROM access_events ORDER BY seq');
      expect(findBreak('0'.repeat(64), rows.map(chainedEventFromRow))).toBeNull();
    });

    it('admits RESTRICTED records and other types only when the grant says so', async () => {
      const g = (await grant(treatment({ includeRestricted: true }))).data!.grantConsent;
      const seen = (await listAs(doctor)).data!.records.items.map((r) => r.id).sort();
      expect(seen).toEqual([...ids.obs, ids.cond, ids.restricted].sort());
      await api.ok(REVOKE, { id: g.id }, patient);
    });

    it('lets a grant for a category admit only that category', async () => {
      const g = (await grant(treatment({ categories: ['problem-list-item'] }))).data!.grantConsent;
      expect((await listAs(doctor)).data!.records.items.map((r) => r.id)).toEqual([ids.cond]);
      await api.ok(REVOKE, { id: g.id }, patient);
    });

    it('honours validity windows: an expired or not-yet-valid grant admits nothing', async () => {
      const hour = 3600_000;
      const expired = (
        await grant(
          treatment({
            validFrom: new Date(Date.now() - 2 * hour).toISOString(),
            validUntil: new Date(Date.now() - hour).toISOString(),
          }),
        )
      ).data!.grantConsent;
      expect(expired.status).toBe('EXPIRED');
      const future = (
        await grant(treatment({ validFrom: new Date(Date.now() + hour).toISOString() }))
      ).data!.grantConsent;
      expect(future.status).toBe('ACTIVE');
      expect(codes(await listAs(doctor))).toEqual(['CONSENT_REQUIRED']);
      const listed = await api.ok<{ consents: { id: string }[] }>(
        CONSENTS,
        { s: 'EXPIRED' },
        patient,
      );
      expect(listed.consents.map((c) => c.id)).toContain(expired.id);
      await api.ok(REVOKE, { id: future.id }, patient);
    });

    it('admits an ORGANIZATION grant to members of that organisation only', async () => {
      // Organisations of this run alone: a shared ledger (Fabric) holds other suites' grants.
      const [mine, other] = [`org-a-${randomUUID()}`, `org-b-${randomUUID()}`];
      const g = (
        await grant(
          treatment({
            granteeType: 'ORGANIZATION',
            granteeId: mine,
            resourceTypes: ['Condition'],
          }),
        )
      ).data!.grantConsent;
      const member = await api.token('dr-member', 'CLINICIAN', mine);
      const outsider = await api.token('dr-outsider', 'CLINICIAN', other);
      const noOrg = await api.token('dr-none', 'CLINICIAN');
      expect((await listAs(member)).data!.records.items.map((r) => r.id)).toEqual([ids.cond]);
      expect(codes(await listAs(outsider))).toEqual(['CONSENT_REQUIRED']);
      expect(codes(await listAs(noOrg))).toEqual(['CONSENT_REQUIRED']);
      const memberView = await api.ok<{ consents: { id: string }[] }>(CONSENTS, {}, member);
      expect(memberView.consents.map((c) => c.id)).toEqual([g.id]);
      expect((await api.ok<{ consents: unknown[] }>(CONSENTS, {}, outsider)).consents).toEqual([]);
      await api.ok(REVOKE, { id: g.id }, patient);
    });

    it.each([
      [{ actions: ['TRAIN'] }, 'input.actions'],
      [{ purpose: 'RESEARCH' }, 'input.actions'],
      [{ actions: [] }, 'input.actions'],
      [{ granteeId: 'has\u0007bell' }, 'input.granteeId'],
      [{ resourceTypes: ['Observation', 'Observation'] }, 'input.resourceTypes'],
      [
        { validFrom: '2030-01-02T00:00:00Z', validUntil: '2030-01-01T00:00:00Z' },
        'input.validUntil',
      ],
    ])('rejects a grant that makes no sense (%j), naming the field', async (extra, field) => {
      const res = await grant(treatment(extra));
      expect(codes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors?.[0].extensions.field).toBe(field);
    });

    it('names a clinician by the subject their identity provider issues', async () => {
      for (const sub of ['auth0|5f7c8ec7c33c6c004bbafe82', 'dr.house@example.org']) {
        const dr = await api.token(sub, 'CLINICIAN');
        expect(codes(await listAs(dr))).toEqual(['CONSENT_REQUIRED']);
        const g = await grant(treatment({ granteeId: sub, resourceTypes: ['Condition'] }));
        expect(g.errors).toBeUndefined();
        expect((g.data!.grantConsent as unknown as { grantee: unknown }).grantee).toEqual({
          type: 'CLINICIAN',
          id: sub,
        });
        expect((await listAs(dr)).data!.records.items.map((r) => r.id)).toEqual([ids.cond]);
        await api.ok(REVOKE, { id: g.data!.grantConsent.id }, patient);
      }
    });

    it('lets only the patient grant and revoke their own consents', async () => {
      expect(codes(await grant(treatment(), doctor))).toEqual(['FORBIDDEN']);
      const g = (await grant(treatment())).data!.grantConsent;
      const other = await api.token('someone-else', 'PATIENT');
      await api.ok('mutation { registerPatient { id } }', {}, other);
      expect(codes(await api.gql(REVOKE, { id: g.id }, other))).toEqual(['NOT_FOUND']);
      expect(codes(await api.gql(REVOKE, { id: g.id }, doctor))).toEqual(['FORBIDDEN']);
      await api.ok(REVOKE, { id: g.id }, patient);
      expect(codes(await api.gql(REVOKE, { id: g.id }, patient))).toEqual(['CONFLICT']);
      expect(codes(await api.gql(CONSENTS, { p: patientId }, other))).toEqual(['FORBIDDEN']);
    });

    it('lists, for a clinician who is a patient here too, their own grants and those made to them', async () => {
      const both = await api.token('dr-and-patient', ['PATIENT', 'CLINICIAN']);
      await api.ok('mutation { registerPatient { id } }', {}, both);
      const toThem = (await grant({ ...treatment(), granteeId: 'dr-and-patient' })).data!
        .grantConsent.id;
      const { consents: asClinician } = await api.ok<{ consents: { id: string }[] }>(
        CONSENTS,
        { p: patientId },
        both,
      );
      expect(asClinician.map((c) => c.id)).toEqual([toThem]);
      // Without a patient named: their own grants, as a patient (none yet).
      expect((await api.ok<{ consents: unknown[] }>(CONSENTS, {}, both)).consents).toEqual([]);
      await api.ok(REVOKE, { id: toThem }, patient);
    });

    describe('break-glass', () => {
      const DECLARE = `mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) {
      id patientId clinicianId reason expiresAt } }`;
      const SET =
        'mutation($a: Boolean!) { setEmergencyAccess(allow: $a) { allowEmergencyAccess } }';

      it('is refused when the patient turned emergency access off, and the refusal logged', async () => {
        await api.ok(SET, { a: false }, patient);
        const reason = 'Unconscious in the ER, allergies?';
        const res = await api.gql(DECLARE, { p: patientId, r: reason }, doctor);
        expect(codes(res)).toEqual(['FORBIDDEN']);
        await api.ok(SET, { a: true }, patient);
        const [latest] = (
          await api.ok<{ accessLog: { items: LogEvent[] } }>(LOG, { p: patientId }, patient)
        ).accessLog.items.filter((e) => e.actorId === 'dr-grey');
        expect(latest).toMatchObject({
          decision: 'DENY',
          breakGlass: true,
          reason,
          consentId: null,
        });
      });

      it('is refused when the patient turned it off through another organisation, by the ledger too', async () => {
        const ledger = api.server.app.get<Ledger>(LEDGER);
        const projector = api.server.app.get(ConsentProjector);
        const ME = 'query($p: ID!) { patient(id: $p) { allowEmergencyAccess } }';
        // As another organisation's API writes it; then copied here by the projector.
        const applied = new Set<string>();
        let copied: (() => void) | undefined;
        let txId = '';
        const seen = (e: { name: string; txId: string }) => {
          applied.add(e.txId);
          if (e.txId === txId) copied?.();
        };
        projector.events.on('applied', seen);
        try {
          ({ txId } = await ledger.submit('consent', 'SetEmergencyAccess', [
            JSON.stringify({ patientId, allow: false }),
          ]));
          if (!applied.has(txId)) await new Promise<void>((resolve) => (copied = resolve));
        } finally {
          projector.events.off('applied', seen);
        }
        const allowed = async () =>
          (
            await api.ok<{ patient: { allowEmergencyAccess: boolean } }>(
              ME,
              { p: patientId },
              patient,
            )
          ).patient.allowEmergencyAccess;
        // Copied here by the projector.
        expect(await allowed()).toBe(false);
        try {
          const declare = () =>
            api.gql(DECLARE, { p: patientId, r: 'Unconscious in the ER, allergies?' }, doctor);
          expect(codes(await declare())).toEqual(['FORBIDDEN']);
          // A database copy that still says yes (stale, or altered) does not let one through.
          await api.db.query('UPDATE patients SET emergency_setting_at = NULL WHERE id = $1', [
            patientId,
          ]);
          await api.server.app
            .get(PatientsService)
            .applyEmergencyAccess({ patientId, allow: true, setAt: new Date().toISOString() });
          const refused = await declare();
          expect(codes(refused)).toEqual(['FORBIDDEN']);
          expect(refused.errors![0].message).toContain('turned emergency access off');
          expect(
            Number(
              (
                await api.db.query(
                  'SELECT count(*) FROM emergency_accesses WHERE patient_id = $1 AND clinician_id = $2',
                  [patientId, 'dr-grey'],
                )
              ).rows[0].count,
            ),
          ).toBe(0);
        } finally {
          await api.ok(SET, { a: true }, patient);
        }
        expect(await allowed()).toBe(true);
      });

      it('needs a real reason and a real patient', async () => {
        for (const r of [
          'urgent',
          '..........',
          '\u200b'.repeat(12),
          'a b c d e f g h i',
          // Reads "allergy check" to the patient, while the clinician typed something else.
          'Unconscious, \u202Ekcehc ygrella\u202C',
          'x'.repeat(501),
        ]) {
          expect(codes(await api.gql(DECLARE, { p: patientId, r }, doctor))).toEqual([
            'BAD_USER_INPUT',
          ]);
        }
        // 500 characters outside the BMP are 1,000 UTF-16 units, and still 500 characters.
        const dr = await api.token('dr-astral', 'CLINICIAN', 'org2');
        const astral = await api.gql(DECLARE, { p: patientId, r: '𝐔'.repeat(500) }, dr);
        expect(codes(astral)).toEqual([]);
        expect(
          codes(await api.gql(DECLARE, { p: randomUUID(), r: 'Unconscious in the ER' }, doctor)),
        ).toEqual(['NOT_FOUND']);
        expect(
          codes(await api.gql(DECLARE, { p: patientId, r: 'Unconscious in the ER' }, patient)),
        ).toEqual(['FORBIDDEN']);
      });

      it('grants READ for 60 minutes, logged with the reason and shown to the patient, then expires', async () => {
        const er = await api.token('dr-er', 'CLINICIAN', 'org2');
        const reason = 'Unconscious in the ER, checking allergies';
        const declared = await api.ok<{ declareEmergency: { id: string; expiresAt: string } }>(
          DECLARE,
          { p: patientId, r: reason },
          er,
        );
        const minutes = (Date.parse(declared.declareEmergency.expiresAt) - Date.now()) / 60_000;
        expect(minutes).toBeGreaterThan(59);
        expect(minutes).toBeLessThanOrEqual(60);
        const seen = (await listAs(er)).data!.records.items;
        expect(seen).toHaveLength(4);

        const log = (
          await api.ok<{ accessLog: { items: LogEvent[] } }>(LOG, { p: patientId }, patient)
        ).accessLog.items;
        const mine = log.filter((e) => e.actorId === 'dr-er');
        expect(mine).toHaveLength(2); // the declaration, then the read
        for (const e of mine)
          expect(e).toMatchObject({ breakGlass: true, reason, decision: 'PERMIT' });
        expect(mine[0].recordIds).toHaveLength(4);

        // Sixty minutes later (moved forward in the database rather than waited for).
        await api.db.query(
          `UPDATE emergency_accesses SET expires_at = now() - interval '1 second' WHERE id = $1`,
          [declared.declareEmergency.id],
        );
        expect(codes(await listAs(er))).toEqual(['CONSENT_REQUIRED']);
      });

      it('ends a running emergency when the patient turns emergency access off', async () => {
        const er = await api.token('dr-er-2', 'CLINICIAN', 'org2');
        await api.ok(DECLARE, { p: patientId, r: 'Collapsed at home, checking medications' }, er);
        expect((await listAs(er)).data!.records.items).toHaveLength(4);
        // Allowing what is allowed already changes nothing: the emergency runs on.
        await api.ok(SET, { a: true }, patient);
        expect((await listAs(er)).data!.records.items).toHaveLength(4);
        await api.ok(SET, { a: false }, patient);
        try {
          expect(codes(await listAs(er))).toEqual(['CONSENT_REQUIRED']);
        } finally {
          await api.ok(SET, { a: true }, patient);
        }
        // On again, the declaration that the opt-out ended stays ended: a new one is needed.
        expect(codes(await listAs(er))).toEqual(['CONSENT_REQUIRED']);
        await api.ok(DECLARE, { p: patientId, r: 'Still collapsed, checking medications' }, er);
        expect((await listAs(er)).data!.records.items).toHaveLength(4);
      });
    });

    describe('grants and an emergency together', () => {
      const VERIFY = 'query($p: ID!) { verifyAccessLog(patientId: $p) { ok problems } }';
      const lastRead = async (actorId: string) => {
        const log = (
          await api.ok<{ accessLog: { items: (LogEvent & { at: string })[] } }>(
            LOG,
            { p: patientId, first: 50 },
            patient,
          )
        ).accessLog.items.filter((e) => e.actorId === actorId);
        // The newest call's events (written together, so at the same instant), oldest first.
        return log.filter((e) => e.at === log[0].at).reverse();
      };

      it('cites, for each record of a listing, the grant that permits it', async () => {
        const dr = await api.token('dr-two-grants', 'CLINICIAN', 'org9');
        const forConditions = await api.grantRead(patient, 'dr-two-grants', {
          resourceTypes: ['Condition'],
        });
        const forObservations = await api.grantRead(patient, 'dr-two-grants', {
          resourceTypes: ['Observation'],
        });
        const seen = (await listAs(dr)).data!.records.items;
        expect(seen.map((r) => r.id).sort()).toEqual([...ids.obs, ids.cond].sort());
        const events = await lastRead('dr-two-grants');
        expect(
          Object.fromEntries(events.map((e) => [e.consentId, [...e.recordIds].sort()])),
        ).toEqual({ [forConditions]: [ids.cond], [forObservations]: [...ids.obs].sort() });
        expect(await api.ok(VERIFY, { p: patientId }, patient)).toEqual({
          verifyAccessLog: { ok: true, problems: [] },
        });
      });

      it('gives READ of everything in an emergency to a clinician whose grant covers part of it', async () => {
        const dr = await api.token('dr-narrow', 'CLINICIAN', 'org9');
        const narrow = await api.grantRead(patient, 'dr-narrow', { resourceTypes: ['Condition'] });
        expect((await listAs(dr)).data!.records.items.map((r) => r.id)).toEqual([ids.cond]);
        expect(codes(await api.gql(ONE, { id: ids.restricted }, dr))).toEqual(['NOT_FOUND']);
        const reason = 'Arrived unconscious, the whole history is needed';
        await api.ok(DECLARE_EMERGENCY, { p: patientId, r: reason }, dr);

        const seen = (await listAs(dr)).data!.records.items.map((r) => r.id);
        expect(seen.sort()).toEqual([...ids.obs, ids.cond, ids.restricted].sort());
        // What the grant covers is read under it; the rest under the emergency, break-glass.
        const events = await lastRead('dr-narrow');
        expect(events).toHaveLength(2);
        expect(events.find((e) => !e.breakGlass)).toMatchObject({
          consentId: narrow,
          recordIds: [ids.cond],
        });
        const glass = events.find((e) => e.breakGlass)!;
        expect(glass).toMatchObject({ consentId: null, reason });
        expect([...glass.recordIds].sort()).toEqual([...ids.obs, ids.restricted].sort());
        expect((await api.gql(ONE, { id: ids.restricted }, dr)).data).toEqual({
          record: { id: ids.restricted, resourceType: 'Observation' },
        });
        expect(await api.ok(VERIFY, { p: patientId }, patient)).toEqual({
          verifyAccessLog: { ok: true, problems: [] },
        });
        // A write is still the grant's alone: an emergency gives READ.
        expect(
          codes(
            await api.gql(
              'mutation($r: JSON!, $p: ID) { createRecord(input: {resource: $r, patientId: $p}) { id } }',
              { r: condition(), p: patientId },
              dr,
            ),
          ),
        ).toEqual(['CONSENT_REQUIRED']);
      });
    });

    describe('the access log', () => {
      it('is shown to the patient only', async () => {
        expect(codes(await api.gql(LOG, { p: patientId }, doctor))).toEqual(['FORBIDDEN']);
        const other = await api.token('someone-else', 'PATIENT');
        expect(codes(await api.gql(LOG, { p: patientId }, other))).toEqual(['FORBIDDEN']);
      });

      it('pages newest first without gaps', async () => {
        const all: string[] = [];
        let after: string | null = null;
        do {
          const page: { accessLog: { items: { id: string }[]; nextCursor: string | null } } =
            await api.ok(LOG, { p: patientId, first: 3, after }, patient);
          all.push(...page.accessLog.items.map((e) => e.id));
          after = page.accessLog.nextCursor;
        } while (after);
        const { rows } = await api.db.query(
          'SELECT id FROM access_events WHERE patient_id = $1 ORDER BY seq DESC',
          [patientId],
        );
        expect(all).toEqual(rows.map((r) => r.id));
      });

      it('cannot be rewritten: the database refuses UPDATE and DELETE', async () => {
        await expect(api.db.query(`UPDATE access_events SET decision = 'PERMIT'`)).rejects.toThrow(
          /append-only/,
        );
        await expect(api.db.query('DELETE FROM access_events')).rejects.toThrow(/append-only/);
      });
    });

    describe('the consent projection', () => {
      /** A READ grant written straight to the ledger, as another organisation's API writes it. */
      const grantOnLedger = (id: string, granteeId: string, extra: Record<string, unknown> = {}) =>
        api.server.app.get<Ledger>(LEDGER).submit('consent', 'GrantConsent', [
          JSON.stringify({
            id,
            patientId,
            grantee: { type: 'CLINICIAN', id: granteeId },
            purpose: 'TREATMENT',
            actions: ['READ'],
            ...extra,
          }),
        ]);

      it('applies grants written by another organisation from the ledger events', async () => {
        const projector = api.server.app.get(ConsentProjector);
        const id = randomUUID();
        const applied = new Promise<void>((resolve) =>
          projector.events.on(
            'applied',
            (e: { payload: { id: string } }) => e.payload.id === id && resolve(),
          ),
        );
        await grantOnLedger(id, 'dr-remote', { resourceTypes: ['Condition'] });
        await applied;
        const remote = await api.token('dr-remote', 'CLINICIAN', 'org2');
        expect((await listAs(remote)).data!.records.items.map((r) => r.id)).toEqual([ids.cond]);
      });

      it('never writes a replayed grant ACTIVE that the ledger has revoked since', async () => {
        // As after a restart or an outage: the grant and its revocation were both committed
        // while this projector was not listening, and on resuming it meets the grant first.
        const ledger = api.server.app.get<Ledger>(LEDGER);
        const projector = api.server.app.get(ConsentProjector);
        const projection = api.server.app.get(ConsentProjection);
        const paused = projector as unknown as {
          subscription: { close(): Promise<void> };
          start(): Promise<void>;
        };
        const id = randomUUID();
        const written: string[] = [];
        const apply = projection.apply.bind(projection);
        const spy = jest.spyOn(projection, 'apply').mockImplementation(async (g, m) => {
          if (g.id === id) written.push(g.status);
          return apply(g, m);
        });
        await paused.subscription.close();
        try {
          await grantOnLedger(id, 'dr-replayed');
          await ledger.submit('consent', 'RevokeConsent', [id]);
          projector.replayAgeMs = 0;
          const caughtUp = new Promise<void>((resolve) => {
            const seen = (e: { name: string; payload: { id: string } }) => {
              if (e.payload.id !== id || e.name !== 'ConsentRevoked') return;
              projector.events.off('applied', seen);
              resolve();
            };
            projector.events.on('applied', seen);
          });
          await paused.start();
          await caughtUp;
        } finally {
          projector.replayAgeMs = REPLAY_AGE_MS;
          spy.mockRestore();
        }
        expect(written).toEqual(['REVOKED']);
        const { rows } = await api.db.query('SELECT status FROM consent_grants WHERE id = $1', [
          id,
        ]);
        expect(rows).toEqual([{ status: 'REVOKED' }]);
      });

      it('rebuilt from scratch equals the live one', async () => {
        const snapshot = async () =>
          (await api.db.query('SELECT * FROM consent_grants ORDER BY id')).rows;
        const live = await snapshot();
        const projector = api.server.app.get(ConsentProjector);
        // One event per grant, and one more per revocation (a ledger shared with other suites
        // also holds patients' signed-consent settings, which are not grants: not counted).
        const events = live.length + live.filter((g) => g.status === 'REVOKED').length;
        const caughtUp = new Promise<void>((resolve) => {
          let n = 0;
          projector.events.on(
            'applied',
            (e: { name: string }) => e.name.startsWith('Consent') && ++n === events && resolve(),
          );
        });
        await projector.rebuild();
        await caughtUp;
        expect(await snapshot()).toEqual(live);
      });
    });
  });
}
