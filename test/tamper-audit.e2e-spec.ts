// Someone with write access to the organisation's PostgreSQL (a DBA, a restored backup, an
// intruder) edits the access log, the emergency declarations or the ledger's blocks behind
// the API's back, through the superuser connection. Each edit is detected, or harmless.
import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import { AccessLog, checkAccessLog, poolRows } from '../src/audit';
import { EmbeddedLedger, Ledger, LEDGER } from '../src/ledger';
import { verifyAll } from '../src/verification';
import { observation } from './helpers/fhir';
import { codes, TestApi } from './helpers/test-api';

const READ = 'query($p: ID!) { records(patientId: $p) { items { id } } }';
/** The chain of org1's single instance (no INSTANCE_ID), as the test servers run. */
const ORG1_CHAIN = { organization: 'org1', chainId: 'access-log' };
const VERIFY = `query($p: ID!) { verifyAccessLog(patientId: $p) { patientId ok eventsChecked
  permitsJustified anchoredThrough unanchoredEvents problems } }`;
const GRANT = `mutation { grantConsent(input: {granteeType: CLINICIAN, granteeId: "dr-tamper",
  purpose: TREATMENT, actions: [READ]}) { id } }`;

/** Runs `sql` as the superuser with triggers off, as a replica (or a restore) would. */
async function behindTriggers(db: Client, sql: string, params: unknown[] = []): Promise<void> {
  await db.query('BEGIN');
  try {
    await db.query('SET LOCAL session_replication_role = replica');
    await db.query(sql, params);
    await db.query('COMMIT');
  } catch (e) {
    await db.query('ROLLBACK');
    throw e;
  }
}

async function registeredPatient(api: TestApi, sub: string) {
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
  return { token, patientId: registerPatient.id };
}

async function readOwnRecords(api: TestApi, p: { token: string; patientId: string }, times = 1) {
  for (let i = 0; i < times; i++) await api.ok(READ, { p: p.patientId }, p.token);
}

describe('an access log wiped behind the trigger', () => {
  let api: TestApi;
  let pool: Pool;
  let anchoredSeq: number;
  let patient: { token: string; patientId: string };

  beforeAll(async () => {
    api = await TestApi.start();
    pool = new Pool({ connectionString: api.config.databaseUrl, max: 2 });
    patient = await registeredPatient(api, 'wiped');
    await readOwnRecords(api, patient, 4);
    const log = api.server.app.get(AccessLog);
    const anchored = new Promise<{ seq: number }>((resolve) =>
      log.events.once('anchored', resolve),
    );
    await log.anchorHead();
    anchoredSeq = (await anchored).seq;
  });
  afterAll(async () => {
    await pool?.end();
    await api?.stop();
  });

  it('verifies a clean system (verify-ledger would exit 0)', async () => {
    const result = await verifyAll(pool, 'org1');
    expect(result.ok).toBe(true);
    expect(result.lines.join('\n')).toContain(
      `Access log: 4 events walked along their hash chain; anchored on the ledger through event ${anchoredSeq}; 0 event(s) not yet anchored`,
    );
    const { verifyAccessLog } = await api.ok(VERIFY, { p: patient.patientId }, patient.token);
    expect(verifyAccessLog).toEqual({
      patientId: patient.patientId,
      ok: true,
      eventsChecked: 4,
      permitsJustified: 4,
      anchoredThrough: anchoredSeq,
      unanchoredEvents: 0,
      problems: [],
    });
  });

  it("lets the patient and ADMIN verify the patient's log, and no one else", async () => {
    const admin = await api.token('root', 'ADMIN');
    const res = await api.ok<{ verifyAccessLog: { ok: boolean } }>(
      VERIFY,
      { p: patient.patientId },
      admin,
    );
    expect(res.verifyAccessLog.ok).toBe(true);
    const other = await registeredPatient(api, 'nosy');
    for (const token of [other.token, await api.token('dr-x', 'CLINICIAN', 'org1')]) {
      expect(codes(await api.gql(VERIFY, { p: patient.patientId }, token))).toEqual(['FORBIDDEN']);
    }
    for (const p of [randomUUID(), 'not-an-id']) {
      expect(codes(await api.gql(VERIFY, { p }, admin))).toEqual(['NOT_FOUND']);
    }
  });

  it('fails naming the anchored event once every event and local anchor is deleted', async () => {
    await behindTriggers(api.db, 'DELETE FROM access_events');
    await behindTriggers(api.db, 'DELETE FROM audit_anchors');

    const result = await verifyAll(pool, 'org1');
    expect(result.ok).toBe(false);
    expect(result.lines.join('\n')).toContain(
      `BROKEN: access event ${anchoredSeq} was anchored on the ledger but is gone from the log (events 1–${anchoredSeq} are missing)`,
    );
    const check = await checkAccessLog(
      poolRows(pool),
      new EmbeddedLedger(pool, { organization: 'org1' }),
      ORG1_CHAIN,
    );
    expect(check).toMatchObject({ eventsChecked: 0, anchoredThrough: anchoredSeq });
    const { verifyAccessLog } = await api.ok<{
      verifyAccessLog: { ok: boolean; eventsChecked: number; problems: string[] };
    }>(VERIFY, { p: patient.patientId }, patient.token);
    expect(verifyAccessLog.ok).toBe(false);
    expect(verifyAccessLog.problems).toContain(
      `access event ${anchoredSeq} was anchored on the ledger but is gone from the log (events 1–${anchoredSeq} are missing)`,
    );
  });
});

describe('access events deleted after the last anchor', () => {
  let api: TestApi;
  let pool: Pool;
  const check = (patientId?: string) =>
    checkAccessLog(poolRows(pool), api.server.app.get<Ledger>(LEDGER), ORG1_CHAIN, { patientId });

  beforeAll(async () => {
    api = await TestApi.start();
    pool = new Pool({ connectionString: api.config.databaseUrl, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await api?.stop();
  });

  it('are counted as not yet provable, not as a break, until a graceful shutdown anchors them', async () => {
    const mine = await registeredPatient(api, 'unanchored');
    const theirs = await registeredPatient(api, 'bystander');
    await readOwnRecords(api, mine, 3);
    await api.server.app.get(AccessLog).anchorHead();
    await readOwnRecords(api, mine, 2);
    await readOwnRecords(api, theirs, 1);

    expect(await check()).toEqual({
      eventsChecked: 6,
      anchoredThrough: 3,
      unanchoredEvents: 3,
      problems: [],
    });
    // One patient's view: the whole chain walked, only their events counted.
    expect(await check(mine.patientId)).toEqual({
      eventsChecked: 5,
      anchoredThrough: 3,
      unanchoredEvents: 2,
      problems: [],
    });

    // Cutting the tail after the anchor cannot be told from events never written.
    await behindTriggers(api.db, 'DELETE FROM access_events WHERE seq = 6');
    expect(await check()).toMatchObject({ unanchoredEvents: 2, problems: [] });

    // A graceful shutdown anchors the head as it stands (event 5), so now a deletion shows.
    await api.restart();
    await expect(
      api.server.app.get<Ledger>(LEDGER).evaluate('audit', 'GetAuditHead', ['org1', 'access-log']),
    ).resolves.toMatchObject({ seq: 5 });
    expect(await check()).toMatchObject({ anchoredThrough: 5, unanchoredEvents: 0, problems: [] });

    await behindTriggers(api.db, 'DELETE FROM access_events WHERE seq = 5');
    const result = await verifyAll(pool, 'org1');
    expect(result.ok).toBe(false);
    expect(result.lines.join('\n')).toContain(
      'BROKEN: access event 5 was anchored on the ledger but is gone from the log',
    );
  });
});

describe('an erased emergency reason', () => {
  let api: TestApi;
  let pool: Pool;
  const reason = `Found unconscious on the stairs, case ${randomUUID()}`;

  /** Rows of every table whose text form (bytea as hex) holds the reason. */
  async function rowsHoldingReason(): Promise<string[]> {
    const tables = await api.db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
       WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const hex = Buffer.from(reason, 'utf8').toString('hex');
    const found: string[] = [];
    for (const { table_name: t } of tables.rows) {
      const { rows } = await api.db.query(
        `SELECT count(*)::int AS n FROM "${t}" x
         WHERE strpos(x::text, $1) > 0 OR strpos(lower(x::text), $2) > 0`,
        [reason, hex],
      );
      if (rows[0].n > 0) found.push(t);
    }
    return found;
  }

  beforeAll(async () => {
    api = await TestApi.start();
    pool = new Pool({ connectionString: api.config.databaseUrl, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await api?.stop();
  });

  it('is shown to the patient, stored only sealed, and unreadable after erasure', async () => {
    const patient = await registeredPatient(api, 'shredded');
    const doctor = await api.token('dr-er', 'CLINICIAN');
    await api.ok(
      'mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { id } }',
      { p: patient.patientId, r: reason },
      doctor,
    );
    await api.ok(READ, { p: patient.patientId }, doctor);

    const LOG =
      'query($p: ID!) { accessLog(patientId: $p) { items { actorId breakGlass reason } } }';
    const shown = (
      await api.ok<{ accessLog: { items: { actorId: string; reason: string | null }[] } }>(
        LOG,
        { p: patient.patientId },
        patient.token,
      )
    ).accessLog.items.filter((e) => e.actorId === 'dr-er');
    expect(shown).toEqual([
      { actorId: 'dr-er', breakGlass: true, reason },
      { actorId: 'dr-er', breakGlass: true, reason },
    ]);
    // Sealed at rest, even before erasure.
    expect(await rowsHoldingReason()).toEqual([]);
    const sealed = await api.db.query(
      `SELECT count(*)::int AS n FROM access_events
       WHERE patient_id = $1 AND reason IS NULL AND reason_sealed IS NOT NULL`,
      [patient.patientId],
    );
    expect(sealed.rows[0].n).toBe(2);

    await api.ok('mutation { eraseMyData(confirm: true) }', {}, patient.token);

    expect(await rowsHoldingReason()).toEqual([]);
    const page = await api.server.app.get(AccessLog).page(patient.patientId, 100);
    expect(page.items.filter((e) => e.breakGlass).map((e) => e.reason)).toEqual([null, null]);
    // The chain covers the ciphertext, which erasure leaves in place: still whole.
    const result = await verifyAll(pool, 'org1');
    expect(result.lines.filter((l) => l.includes('BROKEN'))).toEqual([]);
    expect(result.ok).toBe(true);
  });
});

describe('a ledger whose last block was altered', () => {
  let api: TestApi;
  let patient: string;

  beforeAll(async () => {
    api = await TestApi.start();
    patient = (await registeredPatient(api, 'blocked')).token;
    await api.ok(GRANT, {}, patient);
    await behindTriggers(
      api.db,
      `UPDATE ledger_blocks SET body = body || ' '
       WHERE number = (SELECT max(number) FROM ledger_blocks)`,
    );
    await api.restart();
  });
  afterAll(() => api?.stop());

  it('is never extended: a submit fails and names verify-ledger', async () => {
    const blocks = (await api.db.query('SELECT count(*)::int AS n FROM ledger_blocks')).rows[0].n;
    const res = await api.gql(GRANT, {}, patient);
    expect(codes(res)).toEqual(['LEDGER_UNAVAILABLE']);
    expect(res.errors![0].message).toMatch(/chain is broken.*npx custodia verify-ledger/);
    expect((await api.db.query('SELECT count(*)::int AS n FROM ledger_blocks')).rows[0].n).toBe(
      blocks,
    );
  });

  it('reports the ledger down on /health and counts the failure once', async () => {
    const health = await fetch(`${api.url}/health`);
    expect(health.status).toBe(503);
    const body = (await health.json()) as {
      error: { ledger: { status: string; message: string } };
    };
    expect(body.error.ledger).toMatchObject({
      status: 'down',
      message: expect.stringContaining('verify-ledger'),
    });
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/custodia_integrity_failures_total\{kind="ledger_chain"\} 1\b/);
  });

  it('still answers reads, from the database and from the ledger', async () => {
    const { consents } = await api.ok<{ consents: { id: string }[] }>(
      '{ consents { id status } }',
      {},
      patient,
    );
    expect(consents).toHaveLength(1);
    await expect(
      api.server.app.get<Ledger>(LEDGER).evaluate('consent', 'GetConsent', [consents[0].id]),
    ).resolves.toMatchObject({ status: 'ACTIVE' });
  });
});

describe('emergency declarations in the database', () => {
  let api: TestApi;
  let patientId: string;
  let doctor: string;
  const DECLARE =
    'mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { id } }';

  beforeAll(async () => {
    api = await TestApi.start();
    patientId = (await registeredPatient(api, 'declared')).patientId;
    doctor = await api.token('dr-on-call', 'CLINICIAN');
  });
  afterAll(() => api?.stop());

  it('are not believed once their expiry is moved, and the row is counted', async () => {
    const { declareEmergency } = await api.ok<{ declareEmergency: { id: string } }>(
      DECLARE,
      { p: patientId, r: 'Unresponsive, suspected overdose' },
      doctor,
    );
    await api.ok(READ, { p: patientId }, doctor);
    // Moved to one second later: the sealed reason, bound to the expiry, no longer opens.
    await api.db.query(
      `UPDATE emergency_accesses SET expires_at = expires_at + interval '1 second' WHERE id = $1`,
      [declareEmergency.id],
    );
    expect(codes(await api.gql(READ, { p: patientId }, doctor))).toEqual(['CONSENT_REQUIRED']);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/custodia_integrity_failures_total\{kind="emergency"\} [1-9]/);
  });

  it('made before reasons were sealed are sealed at start-up and open nothing, never being on the ledger', async () => {
    const id = randomUUID();
    const reason = 'Declared before sealing: cardiac arrest';
    // A row as the previous schema wrote it (the NOT VALID check binds new rows only).
    await api.db.query(
      'ALTER TABLE emergency_accesses DROP CONSTRAINT emergency_accesses_reason_sealed',
    );
    await api.db.query(
      `INSERT INTO emergency_accesses (id, patient_id, clinician_id, reason, declared_at, expires_at)
       VALUES ($1, $2, 'dr-legacy', $3, now(), now() + interval '1 hour')`,
      [id, patientId, reason],
    );
    await api.db.query(
      `ALTER TABLE emergency_accesses ADD CONSTRAINT emergency_accesses_reason_sealed
       CHECK (reason IS NULL AND reason_sealed IS NOT NULL AND key_id IS NOT NULL) NOT VALID`,
    );
    await api.restart();

    const row = (
      await api.db.query(
        'SELECT reason, reason_sealed, key_id FROM emergency_accesses WHERE id = $1',
        [id],
      )
    ).rows[0];
    expect(row).toMatchObject({ reason: null, reason_sealed: expect.any(Buffer) });
    expect(row.reason_sealed.toString('latin1')).not.toContain('cardiac');
    const legacy = await api.token('dr-legacy', 'CLINICIAN');
    const res = await api.gql(READ, { p: patientId }, legacy);
    expect(res.errors?.[0].extensions.code).toBe('CONSENT_REQUIRED');
  });
});

describe('a break-glass access', () => {
  let api: TestApi;
  beforeAll(async () => {
    // Anchoring marks far away: only the break-glass accesses themselves anchor the head.
    api = await TestApi.start({
      AUDIT_ANCHOR_INTERVAL_MS: '3600000',
      AUDIT_ANCHOR_EVERY_EVENTS: '1000',
    });
  });
  afterAll(() => api?.stop());

  it('is anchored on the ledger at once, so its event cannot be deleted unseen', async () => {
    const patient = await registeredPatient(api, 'unconscious');
    const doctor = await api.token('dr-glass', 'CLINICIAN');
    const log = api.server.app.get(AccessLog);
    const anchoredThrough = async () => {
      const [{ seq }] = (
        await api.db.query(
          'SELECT max(seq) AS seq FROM access_events WHERE patient_id = $1 AND break_glass',
          [patient.patientId],
        )
      ).rows;
      await new Promise<void>((resolve) => {
        const check = (a: { seq: number }) => {
          if (a.seq < Number(seq)) return;
          log.events.off('anchored', check);
          resolve();
        };
        log.events.on('anchored', check);
        // Anchored already, before the listener: the anchors say so.
        void api.db
          .query('SELECT max(seq) AS seq FROM audit_anchors')
          .then(({ rows }) => rows[0].seq !== null && check({ seq: Number(rows[0].seq) }));
      });
      return Number(seq);
    };
    await api.ok(
      'mutation($p: ID!, $r: String!) { declareEmergency(patientId: $p, reason: $r) { id } }',
      { p: patient.patientId, r: 'found unresponsive, no relatives reachable' },
      doctor,
    );
    const declared = await anchoredThrough();
    await api.ok(READ, { p: patient.patientId }, doctor);
    expect(await anchoredThrough()).toBeGreaterThan(declared);
    // Deleting the read's event now breaks the chain against the anchored head.
    const [{ seq }] = (await api.db.query('SELECT max(seq) AS seq FROM access_events')).rows;
    const db = new Client({ connectionString: api.config.databaseUrl });
    await db.connect();
    try {
      await behindTriggers(db, 'DELETE FROM access_events WHERE seq = $1', [seq]);
    } finally {
      await db.end();
    }
    expect((await api.verifyLedger()).ok).toBe(false);
  });
});
