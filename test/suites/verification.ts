// verify-ledger and the access log's anchoring, on either ledger (test/verification.e2e-spec.ts:
// embedded; test/fabric: Fabric). On the embedded ledger verify-ledger also walks the chain in the API's database.
import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { AccessLog } from '../../src/audit';
import { ConsentProjector } from '../../src/consent';
import { Ledger, LEDGER, LedgerEvent } from '../../src/ledger';
import { IntegrityMonitor } from '../../src/observability';
import { DataKeyRing } from '../../src/records/crypto';
import { verifyAll } from '../../src/verification';
import { itNeeds, LedgerUnderTest } from '../helpers/ledger-under-test';
import { Collector } from '../helpers/collector';
import { condition } from '../helpers/fhir';
import { TestApi } from '../helpers/test-api';

export function verificationSuite(ledger: LedgerUnderTest): void {
  describe(`verify-ledger (${ledger.name} ledger)`, () => {
    let api: TestApi;
    let pool: Pool;

    beforeAll(async () => {
      api = await ledger.startApi();
      pool = new Pool({ connectionString: api.config.databaseUrl, max: 2 });
      const { token, patientId } = await api.patientWithRecord('vera');
      for (let i = 0; i < 3; i++) {
        await api.ok(
          'query($p: ID!) { records(patientId: $p) { items { id } } }',
          { p: patientId },
          token,
        );
      }
      await api.server.app.get(AccessLog).anchorHead();
    });
    afterAll(async () => {
      await pool?.end();
      await api?.stop();
    });

    itNeeds(
      ledger,
      'chain-in-database',
      'reports what it checked and passes on an untouched ledger and access log',
      async () => {
        const result = await verifyAll(pool, 'org1');
        expect(result.ok).toBe(true);
        expect(result.lines.join('\n')).toMatch(/Blocks: \d+ \(\d+ transactions\) walked/);
        expect(result.lines.join('\n')).toMatch(
          /Access log: 3 events walked along their hash chain; anchored on the ledger through event 3; 0 event\(s\) not yet anchored/,
        );
      },
      () => api,
    );

    itNeeds(
      ledger,
      'chain-in-database',
      'fails on an access event rewritten behind the trigger',
      async () => {
        await api.db.query('ALTER TABLE access_events DISABLE TRIGGER access_events_append_only');
        try {
          await api.db.query(`UPDATE access_events SET decision = 'DENY' WHERE seq = 2`);
          const result = await verifyAll(pool, 'org1');
          expect(result.ok).toBe(false);
          expect(result.lines.join('\n')).toMatch(
            /BROKEN: access event 2: its content does not match its hash/,
          );
          await api.db.query(`UPDATE access_events SET decision = 'PERMIT' WHERE seq = 2`);
        } finally {
          await api.db.query('ALTER TABLE access_events ENABLE TRIGGER access_events_append_only');
        }
        expect((await verifyAll(pool, 'org1')).ok).toBe(true);
      },
      () => api,
    );

    itNeeds(
      ledger,
      'chain-in-database',
      'fails on a rewritten log re-hashed to look whole, by the anchored head',
      async () => {
        await api.db.query('ALTER TABLE access_events DISABLE TRIGGER access_events_append_only');
        const original = (await api.db.query('SELECT * FROM access_events ORDER BY seq')).rows;
        try {
          // Drop the last event: the chain itself still links, but the ledger anchored it.
          await api.db.query('DELETE FROM access_events WHERE seq = 3');
          const result = await verifyAll(pool, 'org1');
          expect(result.ok).toBe(false);
          expect(result.lines.join('\n')).toMatch(
            /BROKEN: access event 3 was anchored on the ledger but is gone/,
          );
        } finally {
          const last = original[2];
          await api.db.query(
            `INSERT INTO access_events (seq, id, actor_id, patient_id, record_ids, action, purpose, decision,
           consent_id, break_glass, reason, at, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING`,
            [
              last.seq,
              last.id,
              last.actor_id,
              last.patient_id,
              last.record_ids,
              last.action,
              last.purpose,
              last.decision,
              last.consent_id,
              last.break_glass,
              last.reason,
              last.at,
              last.prev_hash,
              last.hash,
            ],
          );
          await api.db.query('ALTER TABLE access_events ENABLE TRIGGER access_events_append_only');
        }
        expect((await verifyAll(pool, 'org1')).ok).toBe(true);
      },
      () => api,
    );

    itNeeds(
      ledger,
      'chain-in-database',
      'fails on a changed block',
      async () => {
        await api.db.query(`UPDATE ledger_blocks SET body = body || ' ' WHERE number = 0`);
        try {
          const result = await verifyAll(pool, 'org1');
          expect(result.ok).toBe(false);
          expect(result.lines.join('\n')).toMatch(/BROKEN: block 0/);
        } finally {
          await api.db.query(`UPDATE ledger_blocks SET body = rtrim(body, ' ') WHERE number = 0`);
        }
      },
      () => api,
    );
  });

  describe(`access log anchoring (${ledger.name} ledger)`, () => {
    let api: TestApi;

    beforeAll(async () => {
      api = await ledger.startApi();
    });
    afterAll(() => api?.stop());

    itNeeds(
      ledger,
      'chain-in-database',
      'keeps one unbroken chain when two writers share the database',
      async () => {
        const first = api.server.app.get(AccessLog);
        const second = new AccessLog(
          api.server.app.get(DataSource),
          api.server.app.get<Ledger>(LEDGER),
          api.server.app.get(DataKeyRing),
          api.server.app.get(IntegrityMonitor),
          api.config,
        );
        const event = {
          actorId: 'dr-two',
          patientId: randomUUID(),
          recordIds: [],
          action: 'READ',
          purpose: 'TREATMENT',
          decision: 'DENY' as const,
          consentId: null,
          breakGlass: false,
          reason: null,
        };
        for (let i = 0; i < 5; i++) {
          await first.record(event);
          await second.record(event);
        }
        await Promise.all([first.record(event), second.record(event), first.record(event)]);
        const pool = new Pool({ connectionString: api.config.databaseUrl, max: 2 });
        try {
          const result = await verifyAll(pool, 'org1');
          expect(result.lines.join('\n')).toContain('Access log: 13 events walked');
          expect(result.ok).toBe(true);
        } finally {
          await pool.end();
        }
      },
      () => api,
    );

    it("checks the projection, the access log and the anchors through the ledger in use, and finds a grant row deleted behind the projector's back", async () => {
      const clean = await api.verifyLedger();
      expect(clean.ok).toBe(true);
      expect(clean.text).toMatch(
        /Consent projection: \d+ rows compared with \d+ grants on the ledger/,
      );
      expect(clean.text).toMatch(/Record anchors: \d+ record version\(s\)/);
      const { token } = await api.patientWithRecord(`del-${randomUUID().slice(0, 8)}`);
      // The projector's checkpoint passes the grant: its row, once deleted, is no late one.
      const projector = api.server.app.get(ConsentProjector).events;
      const delivered = new Collector<LedgerEvent>();
      projector.on('applied', delivered.push);
      const grantId = await api.grantRead(token, 'dr-verify');
      await delivered.until((events) =>
        events.some((e) => (e.payload as { id?: string } | null)?.id === grantId),
      );
      projector.off('applied', delivered.push);
      await api.db.query('DELETE FROM consent_grants WHERE id = $1', [grantId]);
      const broken = await api.verifyLedger();
      expect(broken.ok).toBe(false);
      expect(broken.text).toContain(
        `consent projection lacks 1 grant(s) the ledger holds (${grantId}); repaired`,
      );
      expect((await api.verifyLedger()).ok).toBe(true);
    });

    it('anchors the chain head on the ledger by itself once 100 events are logged', async () => {
      const patient = await api.token('hundred', 'PATIENT');
      const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        patient,
      );
      const log = api.server.app.get(AccessLog);
      const anchored = new Promise<{ seq: number; headHash: string }>((resolve) =>
        log.events.once('anchored', resolve),
      );
      await Promise.all(
        Array.from({ length: 100 }, () =>
          api.ok(
            'query($p: ID!) { records(patientId: $p) { items { id } } }',
            { p: registerPatient.id },
            patient,
          ),
        ),
      );
      const head = await anchored;
      expect(head.seq).toBeGreaterThanOrEqual(100);
      const row = (await api.db.query('SELECT hash FROM access_events WHERE seq = $1', [head.seq]))
        .rows[0];
      expect(row.hash).toBe(head.headHash);
      const onLedger = await api.server.app
        .get<Ledger>(LEDGER)
        .evaluate<{ seq: number }>('audit', 'GetAuditHead', [
          api.config.orgId,
          api.config.instanceId ? `access-log.${api.config.instanceId}` : 'access-log',
        ]);
      expect(onLedger.seq).toBe(head.seq);
    });

    // Last: the event it logs stays in the append-only log, and verify-ledger fails from then on.
    it('finds a read logged under a grant whose record filters did not allow the record (a policy decision gone wrong)', async () => {
      const { token, patientId, recordId } = await api.patientWithRecord(
        `filters-${randomUUID().slice(0, 8)}`,
      );
      const diagnosis = await api.createRecord(token, condition());
      const grantId = await api.grantRead(token, 'dr-filters', { resourceTypes: ['Observation'] });
      const doctor = await api.token('dr-filters', 'CLINICIAN');
      const { records } = await api.ok<{ records: { items: { id: string }[] } }>(
        'query($p: ID!) { records(patientId: $p) { items { id } } }',
        { p: patientId },
        doctor,
      );
      expect(records.items.map((r) => r.id)).toEqual([recordId]);
      // The read the rule allowed is found allowed.
      expect(await api.verifyLedger()).toMatchObject({ ok: true });
      // What a decision that ignored the grant's record types would have logged, faithfully.
      await api.server.app.get(AccessLog).record({
        actorId: 'dr-filters',
        patientId,
        recordIds: [recordId, diagnosis],
        action: 'READ',
        purpose: 'TREATMENT',
        decision: 'PERMIT',
        consentId: grantId,
        breakGlass: false,
        reason: null,
      });
      const broken = await api.verifyLedger();
      expect(broken.ok).toBe(false);
      expect(broken.text).toContain(
        `(READ by dr-filters): 1 of its 2 record(s) lay outside what grant ${grantId} allows: ${diagnosis} (its resource type)`,
      );
      // Nothing of what the record holds is said.
      expect(broken.text).not.toMatch(/Condition|44054006|diabetes/i);
    });
  });
}
