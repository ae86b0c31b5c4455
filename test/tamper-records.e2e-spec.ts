// Someone with write access to the organisation's PostgreSQL edits record rows behind the
// API's back (issue 9, parts 5 and 6): relabelled rows must not open, a bad row must not take
// its page down, and integrity must be judged by the ledger alone.
import { randomUUID } from 'node:crypto';
import { EmbeddedLedger, LEDGER } from '../src/ledger';
import { RecordAnchoring, RecordResealing } from '../src/records';
import { DataKeyRing, sealRecordV1 } from '../src/records/crypto';
import { condition, observation } from './helpers/fhir';
import { codes, GraphQLResponse, TestApi } from './helpers/test-api';

const CREATE = `mutation($r: JSON!, $s: Sensitivity) {
  createRecord(input: { resource: $r, sensitivity: $s }) { id contentHash } }`;
const LIST = `query($p: ID!) { records(patientId: $p, first: 50) {
  items { id resourceType category sensitivity integrity } } }`;
const ONE = `query($id: ID!) { record(id: $id) { id integrity ledgerTxId } }`;
const VERIFY = `query($id: ID!) { verifyRecord(id: $id) { status storedHash ledgerHash } }`;

type Page = { records: { items: { id: string; integrity: string }[] } };

describe('records tampered with in the database', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await TestApi.start();
  });
  afterAll(() => api?.stop());

  /** A fresh patient, so that each case's page holds only its own records. */
  async function newPatient() {
    const token = await api.token(`pat-${randomUUID()}`, 'PATIENT');
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      'mutation { registerPatient { id } }',
      {},
      token,
    );
    const create = async (resource: object, sensitivity?: string) =>
      (
        await api.ok<{ createRecord: { id: string; contentHash: string } }>(
          CREATE,
          { r: resource, s: sensitivity ?? null },
          token,
        )
      ).createRecord;
    return { token, id: registerPatient.id, create };
  }

  async function clinicianGranted(
    patient: { token: string; id: string },
    filters: Record<string, unknown>,
  ): Promise<string> {
    const sub = `dr-${randomUUID()}`;
    await api.grantRead(patient.token, sub, filters);
    return api.token(sub, 'CLINICIAN', 'org1');
  }

  /**
   * A record written while the ledger is down, then marked anchored in the database: the
   * outbox leaves it alone, so the ledger never hears of it.
   */
  async function createClaimingAnchor(
    patient: Awaited<ReturnType<typeof newPatient>>,
    resource: object,
  ): Promise<{ id: string; contentHash: string }> {
    const ledger = api.server.app.get<EmbeddedLedger>(LEDGER);
    ledger.simulateOutage(true);
    try {
      const r = await patient.create(resource);
      await api.db.query(
        `UPDATE records SET anchor_state = 'ANCHORED', anchored_hash = content_hash,
           ledger_tx_id = repeat('a', 64) WHERE id = $1`,
        [r.id],
      );
      return r;
    } finally {
      ledger.simulateOutage(false);
    }
  }

  const list = (patientId: string, token: string) => api.gql<Page>(LIST, { p: patientId }, token);
  const ids = (res: GraphQLResponse<Page>) => res.data!.records.items.map((r) => r.id).sort();

  /** The page came back without the record, and one error beside it names the record. */
  function expectWithheld(res: GraphQLResponse<Page>, recordId: string, others: string[]) {
    expect(ids(res)).toEqual([...others].sort());
    expect(res.errors).toHaveLength(1);
    const [error] = res.errors!;
    expect(error.extensions).toMatchObject({ code: 'INTERNAL', recordId });
    expect(error.path).toEqual(['records']);
    expect(error.message).toContain(recordId);
    expect(error.message).toMatch(/report/i);
  }

  async function recordFailures(): Promise<number> {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(INTEGRITY_RECORD));
    return line ? Number(line.slice(INTEGRITY_RECORD.length)) : 0;
  }

  async function lastReadBy(token: string): Promise<string[]> {
    const actorId = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
    const { rows } = await api.db.query(
      `SELECT record_ids FROM access_events WHERE actor_id = $1 ORDER BY seq DESC LIMIT 1`,
      [actorId],
    );
    return rows[0].record_ids;
  }

  describe('labels are bound to the ciphertext', () => {
    it.each([
      {
        label: 'sensitivity',
        grant: { includeRestricted: false },
        target: () => condition('44054006', true),
        column: 'sensitivity',
        value: 'NORMAL',
      },
      {
        label: 'resource type',
        grant: { resourceTypes: ['Observation'] },
        target: () => condition('38341003'),
        column: 'resource_type',
        value: 'Observation',
      },
      {
        label: 'category',
        grant: { categories: ['laboratory'] },
        target: () => condition('38341003'),
        column: 'category',
        value: 'laboratory',
      },
    ])(
      'withholds a record whose $label was changed, from the clinician it would admit and from the patient',
      async ({ grant, target, column, value }) => {
        const patient = await newPatient();
        const visible = await patient.create(observation('2345-7', 5.4));
        const hidden = await patient.create(target());
        const doctor = await clinicianGranted(patient, grant);
        expect(ids(await list(patient.id, doctor))).toEqual([visible.id]);

        await api.db.query(`UPDATE records SET ${column} = $2 WHERE id = $1`, [hidden.id, value]);
        const failuresBefore = await recordFailures();

        const seen = await list(patient.id, doctor);
        expectWithheld(seen, hidden.id, [visible.id]);
        expect(JSON.stringify(seen)).not.toMatch(/44054006|38341003/);
        expect(await lastReadBy(doctor)).toEqual([visible.id]);
        const one = await api.gql<{ record: unknown }>(ONE, { id: hidden.id }, doctor);
        expect(codes(one)).toEqual(['INTERNAL']);
        expect(one.data?.record ?? null).toBeNull();

        expectWithheld(await list(patient.id, patient.token), hidden.id, [visible.id]);
        expect(await recordFailures()).toBeGreaterThanOrEqual(failuresBefore + 3);
      },
    );
  });

  it('returns the rest of a page when one ciphertext has a flipped byte', async () => {
    const patient = await newPatient();
    const records = [
      await patient.create(observation('2345-7', 5.1)),
      await patient.create(observation('2345-7', 5.2)),
      await patient.create(observation('2345-7', 5.3)),
    ];
    const bad = records[1];
    await api.db.query(
      `UPDATE records SET ciphertext = overlay(ciphertext placing
         set_byte('\\x00'::bytea, 0, get_byte(ciphertext, 3) # 1) from 4 for 1)
       WHERE id = $1`,
      [bad.id],
    );
    const res = await list(patient.id, patient.token);
    expectWithheld(
      res,
      bad.id,
      records.filter((r) => r !== bad).map((r) => r.id),
    );
    expect(res.data!.records.items.every((r) => r.integrity === 'VERIFIED')).toBe(true);
    expect(await lastReadBy(patient.token)).not.toContain(bad.id);
    // Checked on its own, it is reported, not refused: what storage claims, against the ledger.
    const report = await api.ok<{
      verifyRecord: { status: string; storedHash: string; ledgerHash: string };
    }>(VERIFY, { id: bad.id }, patient.token);
    expect(report.verifyRecord).toEqual({
      status: 'MISMATCH',
      storedHash: bad.contentHash,
      ledgerHash: bad.contentHash,
    });
  });

  describe('record and verifyRecord agree, judging by the ledger alone', () => {
    async function bothSay(id: string, token: string) {
      const one = await api.ok<{ record: { integrity: string } }>(ONE, { id }, token);
      const report = await api.ok<{ verifyRecord: { status: string } }>(VERIFY, { id }, token);
      expect(one.record.integrity).toBe(report.verifyRecord.status);
      return one.record.integrity;
    }

    it('ignores an anchored hash rewritten in Postgres', async () => {
      const patient = await newPatient();
      const r = await patient.create(observation('2345-7', 6.4));
      const other = await patient.create(observation('2345-7', 6.5));
      await api.db.query(`UPDATE records SET anchored_hash = $2 WHERE id = $1`, [
        r.id,
        other.contentHash,
      ]);
      expect(await bothSay(r.id, patient.token)).toBe('VERIFIED');
    });

    it('finds the anchor of a row that was set back to PENDING', async () => {
      const patient = await newPatient();
      const r = await patient.create(observation('2345-7', 6.6));
      await api.db.query(
        `UPDATE records SET anchor_state = 'PENDING', anchored_hash = NULL, ledger_tx_id = NULL
         WHERE id = $1`,
        [r.id],
      );
      // A fresh server knows no anchor yet: it must ask the ledger.
      await api.restart();
      const one = await api.ok<{ record: { integrity: string; ledgerTxId: string } }>(
        ONE,
        { id: r.id },
        patient.token,
      );
      expect(one.record.ledgerTxId).toMatch(/^[0-9a-f]{64}$/);
      expect(await bothSay(r.id, patient.token)).toBe('VERIFIED');
    });

    it('calls a row that claims an anchor the ledger does not hold MISMATCH', async () => {
      const patient = await newPatient();
      const r = await createClaimingAnchor(patient, observation('2345-7', 6.7));
      expect(await bothSay(r.id, patient.token)).toBe('MISMATCH');
      const report = await api.ok<{ verifyRecord: { ledgerHash: string | null } }>(
        VERIFY,
        { id: r.id },
        patient.token,
      );
      expect(report.verifyRecord.ledgerHash).toBeNull();
    });
  });

  describe('verify-ledger', () => {
    it('checks every stored version against its anchor on the ledger, patient and hash', async () => {
      const patient = await newPatient();
      const kept = await patient.create(observation('2345-7', 7.1));
      const rewritten = await patient.create(observation('2345-7', 7.2));
      const other = await patient.create(observation('2345-7', 7.3));
      const state = await api.db.query(
        'SELECT count(*)::int AS n FROM records WHERE id = ANY($1) AND anchor_state = $2',
        [[kept.id, rewritten.id, other.id], 'ANCHORED'],
      );
      expect(state.rows[0].n).toBe(3);
      // A content hash rewritten to another record's (as a forger would, to match a swapped
      // ciphertext), and a row that claims an anchor the ledger never recorded.
      await api.db.query('UPDATE records SET content_hash = $2 WHERE id = $1', [
        rewritten.id,
        other.contentHash,
      ]);
      const unanchored = await createClaimingAnchor(patient, observation('2345-7', 7.4));
      const { ok, text } = await api.verifyLedger();
      expect(ok).toBe(false);
      expect(text).toMatch(/Record anchors: \d+ record version\(s\); \d+ anchored as stored/);
      expect(text).toContain(
        `BROKEN: version 1 of record ${rewritten.id}: its content hash differs from the one anchored on the ledger`,
      );
      expect(text).toContain(
        `BROKEN: version 1 of record ${unanchored.id} is marked anchored, but the ledger holds no anchor for it`,
      );
      expect(text).not.toContain(kept.id);
    });

    it('finds a record the ledger anchored that storage lost: deleted, or put back to an older version', async () => {
      const patient = await newPatient();
      const deleted = await patient.create(observation('2345-7', 8.1));
      const amended = await patient.create(observation('2345-7', 8.2));
      await api.ok(
        `mutation($id: ID!, $r: JSON!, $v: Int!) {
           updateRecord(id: $id, resource: $r, expectedVersion: $v) { version } }`,
        { id: amended.id, r: observation('2345-7', 8.3), v: 1 },
        patient.token,
      );
      const clean = await api.verifyLedger();
      expect(clean.text).not.toContain(deleted.id);
      expect(clean.text).not.toContain(amended.id);
      await api.db.query('DELETE FROM records WHERE id = $1', [deleted.id]);
      await api.db.query(
        `UPDATE records r SET version = v.version, iv = v.iv, auth_tag = v.auth_tag,
           ciphertext = v.ciphertext, content_hash = v.content_hash, key_id = v.key_id
         FROM record_versions v WHERE v.record_id = r.id AND r.id = $1 AND v.version = 1`,
        [amended.id],
      );
      await api.db.query('DELETE FROM record_versions WHERE record_id = $1', [amended.id]);
      const { ok, text } = await api.verifyLedger();
      expect(ok).toBe(false);
      expect(text).toMatch(/\d+ record\(s\) anchored on the ledger for patients held here/);
      expect(text).toContain(
        `BROKEN: record ${deleted.id} (patient ${patient.id}) is anchored on the ledger through version 1, but storage holds no such record: deleted`,
      );
      expect(text).toContain(
        `BROKEN: record ${amended.id} is stored at version 1, but the ledger anchored version 2: rolled back`,
      );
    });
  });

  describe('records sealed before labels were bound (format 1)', () => {
    it('are re-sealed at start-up with their labels and read VERIFIED against their format-1 anchor', async () => {
      const patient = await newPatient();
      const current = await patient.create(observation('2345-7', 7.1));
      const insertV1 = async (
        resource: { resourceType: string },
        sensitivity: string,
        corrupt = false,
      ) => {
        const id = randomUUID();
        const dek = await api.server.app.get(DataKeyRing).liveKey(patient.id);
        const owned = { ...resource, subject: { reference: `Patient/${patient.id}` } };
        const sealed = sealRecordV1(
          dek.key,
          { recordId: id, patientId: patient.id, version: 1 },
          owned,
        );
        if (corrupt) sealed.ciphertext[0] ^= 1;
        const type = resource.resourceType;
        const category = type === 'Observation' ? 'laboratory' : 'problem-list-item';
        await api.db.query(
          `INSERT INTO records (id, patient_id, version, resource_type, category, sensitivity,
             key_id, iv, auth_tag, ciphertext, binding_version, content_hash, hash_version,
             anchor_state, created_at, updated_at)
           VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9, 1, $10, 1, 'PENDING', now(), now())`,
          [
            id,
            patient.id,
            type,
            category,
            sensitivity,
            dek.id,
            sealed.iv,
            sealed.tag,
            sealed.ciphertext,
            sealed.contentHash,
          ],
        );
        return id;
      };
      const legacy = await insertV1(observation('2345-7', 7.2), 'NORMAL');
      const unreadable = await insertV1(observation('2345-7', 7.3), 'NORMAL', true);
      // Its own meta says restricted; the row says NORMAL: never bound as such.
      const relabelled = await insertV1(condition('44054006', true), 'NORMAL');
      const { anchored } = await api.server.app.get(RecordAnchoring).drainOnce();
      expect(anchored).toBe(3);

      // Until re-sealed, a format-1 row is not served: its labels are not proven.
      const before = await list(patient.id, patient.token);
      expect(ids(before)).toEqual([current.id]);
      expect(before.errors?.map((e) => e.extensions.recordId).sort()).toEqual(
        [legacy, unreadable, relabelled].sort(),
      );

      await api.restart();
      const formats = async () =>
        Object.fromEntries(
          (
            await api.db.query(
              `SELECT id, binding_version, hash_version FROM records WHERE patient_id = $1`,
              [patient.id],
            )
          ).rows.map((r) => [r.id, [r.binding_version, r.hash_version]]),
        );
      expect(await formats()).toEqual({
        [current.id]: [2, 2],
        [legacy]: [2, 1],
        [unreadable]: [1, 1],
        [relabelled]: [1, 1],
      });
      expect(await recordFailures()).toBeGreaterThanOrEqual(2);

      const after = await list(patient.id, patient.token);
      expect(ids(after)).toEqual([current.id, legacy].sort());
      expect(after.data!.records.items.every((r) => r.integrity === 'VERIFIED')).toBe(true);
      expect(after.errors?.map((e) => e.extensions.recordId).sort()).toEqual(
        [unreadable, relabelled].sort(),
      );
      const report = await api.ok<{ verifyRecord: { status: string } }>(
        VERIFY,
        { id: legacy },
        patient.token,
      );
      expect(report.verifyRecord.status).toBe('VERIFIED');

      // Idempotent: a second pass re-seals nothing and leaves the bad rows as they are.
      expect(await api.server.app.get(RecordResealing).resealAll()).toEqual({
        resealed: 0,
        leftAlone: 2,
      });
    });
  });
});

const INTEGRITY_RECORD = 'custodia_integrity_failures_total{kind="record"} ';
