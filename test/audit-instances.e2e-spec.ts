// Two API instances of one organisation, each with its own database and so its own access log,
// anchor their logs on one ledger. One test server plays instance A; instance B's anchors are
// written through the same ledger identity, as B's would be.
import type { AuditHead } from '@custodia/chaincode';
import { Pool } from 'pg';
import { AccessLog } from '../src/audit';
import { Ledger, LEDGER } from '../src/ledger';
import { verifyAll } from '../src/verification';
import { observation } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

const READ = 'query($p: ID!) { records(patientId: $p) { items { id } } }';
const VERIFY = `query($p: ID!) { verifyAccessLog(patientId: $p) { ok anchoredThrough problems } }`;
/** Instance B's head: far ahead of A's log, and a hash no event of A's has. */
const B_SEQ = 500;
const B_HASH = 'b0'.repeat(32);

async function patientReadingOwnRecords(api: TestApi, sub: string, reads: number) {
  const token = await api.token(sub, 'PATIENT');
  const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
    'mutation { registerPatient { id } }',
    {},
    token,
  );
  await api.ok(
    'mutation($r: JSON!) { createRecord(input: {resource: $r}) { id } }',
    { r: observation() },
    token,
  );
  for (let i = 0; i < reads; i++) await api.ok(READ, { p: registerPatient.id }, token);
  return { token, patientId: registerPatient.id };
}

async function lastSeq(api: TestApi): Promise<number> {
  const { rows } = await api.db.query('SELECT max(seq)::int AS seq FROM access_events');
  return rows[0].seq;
}

async function integrityFailures(api: TestApi, kind: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`custodia_integrity_failures_total{kind="${kind}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('access-log chains of two instances of one organisation', () => {
  describe('each with its own INSTANCE_ID', () => {
    let api: TestApi;
    let pool: Pool;
    let ledger: Ledger;

    beforeAll(async () => {
      api = await TestApi.start({ INSTANCE_ID: 'site-a', AUDIT_ANCHOR_INTERVAL_MS: '3600000' });
      pool = new Pool({ connectionString: api.config.databaseUrl, max: 2 });
      ledger = api.server.app.get<Ledger>(LEDGER);
    });
    afterAll(async () => {
      await pool?.end();
      await api?.stop();
    });

    it("anchors its own chain beside the other instance's, and verifies against its own", async () => {
      await ledger.submit('audit', 'AnchorAuditHead', ['access-log.site-b', String(B_SEQ), B_HASH]);
      const patient = await patientReadingOwnRecords(api, 'site-a-patient', 3);
      const log = api.server.app.get(AccessLog);
      expect(log.chainId).toBe('access-log.site-a');
      await log.anchorHead();
      const seq = await lastSeq(api);

      await expect(
        ledger.evaluate<AuditHead>('audit', 'GetAuditHead', ['org1', 'access-log.site-a']),
      ).resolves.toMatchObject({ organization: 'org1', seq });
      await expect(
        ledger.evaluate<AuditHead>('audit', 'GetAuditHead', ['org1', 'access-log.site-b']),
      ).resolves.toMatchObject({ seq: B_SEQ, headHash: B_HASH });
      const heads = await ledger.evaluate<AuditHead[]>('audit', 'ListAuditHeads', ['org1']);
      expect(heads.map((h) => [h.chainId, h.seq])).toEqual([
        ['access-log.site-a', seq],
        ['access-log.site-b', B_SEQ],
      ]);

      const result = await verifyAll(pool, 'org1', undefined, 'site-a');
      expect(result.lines.join('\n')).toContain(`anchored on the ledger through event ${seq}`);
      expect(result.ok).toBe(true);
      const { verifyAccessLog } = await api.ok(VERIFY, { p: patient.patientId }, patient.token);
      expect(verifyAccessLog).toEqual({ ok: true, anchoredThrough: seq, problems: [] });
      expect(await integrityFailures(api, 'access_log')).toBe(0);
    });
  });

  describe('sharing one chain id (neither sets INSTANCE_ID)', () => {
    let api: TestApi;

    beforeAll(async () => {
      api = await TestApi.start({ AUDIT_ANCHOR_INTERVAL_MS: '3600000' });
    });
    afterAll(() => api?.stop());

    it("stops anchoring and reports why, instead of overwriting the other instance's head", async () => {
      const ledger = api.server.app.get<Ledger>(LEDGER);
      // B is behind A here: A's next anchor (seq 2) would advance the chain over B's head.
      await ledger.submit('audit', 'AnchorAuditHead', ['access-log', '1', B_HASH]);
      await patientReadingOwnRecords(api, 'shared-chain-patient', 2);
      await api.server.app.get(AccessLog).anchorHead();

      await expect(
        ledger.evaluate<AuditHead>('audit', 'GetAuditHead', ['org1', 'access-log']),
      ).resolves.toMatchObject({ seq: 1, headHash: B_HASH });
      const { rows } = await api.db.query('SELECT count(*)::int AS n FROM audit_anchors');
      expect(rows[0].n).toBe(0);
      expect(await integrityFailures(api, 'access_log')).toBe(1);
    });
  });
});
