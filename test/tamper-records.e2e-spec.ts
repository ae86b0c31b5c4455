// Someone with write access to the organisation's PostgreSQL edits record rows behind the
// API's back (issue 9, parts 5 and 6): relabelled rows must not open, a bad row must not take
// its page down, and integrity must be judged by the ledger alone. A row that fails its check
// is named to its patient only: to a grantee it is absent, as a record that does not exist; a
// row rolled back is never served under the labels of the older version; and the outbox
// anchors only what a pending row's content hashes to.
import { randomUUID } from 'node:crypto';
import { EmbeddedLedger, LEDGER } from '../src/ledger';
import { RecordAnchoring, RecordResealing } from '../src/records';
import { DataKeyRing, sealRecordV1 } from '../src/records/crypto';
import { condition, CONFIDENTIALITY, observation } from './helpers/fhir';
import { GraphQLResponse, TestApi } from './helpers/test-api';

const CREATE = `mutation($r: JSON!, $s: Sensitivity) {
  createRecord(input: { resource: $r, sensitivity: $s }) { id contentHash } }`;
const LIST = `query($p: ID!) { records(patientId: $p, first: 50) {
  items { id resourceType category sensitivity integrity } } }`;
const ONE = `query($id: ID!) { record(id: $id) { id integrity ledgerTxId } }`;
const VERIFY = `query($id: ID!) { verifyRecord(id: $id) { status storedHash ledgerHash } }`;
const UPDATE = `mutation($id: ID!, $r: JSON!, $v: Int!) {
  updateRecord(id: $id, resource: $r, expectedVersion: $v) {
    version sensitivity contentHash ledgerTxId } }`;
const HISTORY = `query($id: ID!) { recordHistory(id: $id) { version integrity } }`;
const LATEST = `query($p: ID!, $codes: [String!]!) {
  latestObservations(patientId: $p, codes: $codes) { id } }`;

type Page = { records: { items: { id: string; integrity: string }[] } };

describe('records tampered with in the database', () => {
  let api: TestApi;

  beforeAll(async () => {
    // No periodic outbox sweep: the cases that drain the outbox themselves count what it did.
    api = await TestApi.start({ ANCHOR_SWEEP_INTERVAL_MS: '0' });
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

  /** How many PERMIT events of the actor (whose token is given) name the record. */
  async function permitsNaming(token: string, recordId: string): Promise<number> {
    const actorId = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
    const { rows } = await api.db.query(
      `SELECT count(*)::int AS n FROM access_events
       WHERE actor_id = $1 AND decision = 'PERMIT' AND $2 = ANY(record_ids)`,
      [actorId, recordId],
    );
    return rows[0].n;
  }

  /** The error, as code and message, that the query gives for an id that does not exist. */
  async function asIfAbsent(query: string, id: string, token: string) {
    const seen = await api.gql(query, { id }, token);
    const nowhere = await api.gql(query, { id: randomUUID() }, token);
    const shape = (res: GraphQLResponse) =>
      (res.errors ?? []).map((e) => [e.extensions.code, e.message, e.extensions.recordId]);
    expect(shape(nowhere)).toEqual([['NOT_FOUND', expect.any(String), undefined]]);
    expect(shape(seen)).toEqual(shape(nowhere));
    expect(seen.data).toEqual(nowhere.data);
  }

  async function flipCiphertextByte(recordId: string) {
    await api.db.query(
      `UPDATE records SET ciphertext = overlay(ciphertext placing
         set_byte('\\x00'::bytea, 0, get_byte(ciphertext, 3) # 1) from 4 for 1)
       WHERE id = $1`,
      [recordId],
    );
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
      'withholds a record whose $label was changed: absent to the clinician it would admit, named to the patient',
      async ({ grant, target, column, value }) => {
        const patient = await newPatient();
        const visible = await patient.create(observation('2345-7', 5.4));
        const hidden = await patient.create(target());
        const doctor = await clinicianGranted(patient, grant);
        expect(ids(await list(patient.id, doctor))).toEqual([visible.id]);

        await api.db.query(`UPDATE records SET ${column} = $2 WHERE id = $1`, [hidden.id, value]);
        const failuresBefore = await recordFailures();

        // The grant excludes the record as it truly is: the clinician learns nothing of it,
        // not even its id, exactly as before it was relabelled.
        const seen = await list(patient.id, doctor);
        expect(ids(seen)).toEqual([visible.id]);
        expect(seen.errors).toBeUndefined();
        expect(JSON.stringify(seen)).not.toContain(hidden.id);
        expect(await lastReadBy(doctor)).toEqual([visible.id]);
        await asIfAbsent(ONE, hidden.id, doctor);
        await asIfAbsent(VERIFY, hidden.id, doctor);
        await asIfAbsent(HISTORY, hidden.id, doctor);

        expectWithheld(await list(patient.id, patient.token), hidden.id, [visible.id]);
        const own = await api.gql<{ record: unknown }>(ONE, { id: hidden.id }, patient.token);
        expect(own.errors?.map((e) => e.extensions)).toEqual([
          expect.objectContaining({ code: 'INTERNAL', recordId: hidden.id }),
        ]);
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
      await api.server.app.get(RecordAnchoring).drainOnce();
      // The outbox opens each under the binding it was sealed with and anchors what it hashes
      // to: the one that does not open is refused and stays pending.
      const anchorStates = await api.db.query(
        'SELECT id, anchor_state FROM records WHERE id = ANY($1)',
        [[legacy, unreadable, relabelled]],
      );
      expect(Object.fromEntries(anchorStates.rows.map((r) => [r.id, r.anchor_state]))).toEqual({
        [legacy]: 'ANCHORED',
        [unreadable]: 'PENDING',
        [relabelled]: 'ANCHORED',
      });

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

  describe('a record that fails its check, read by a grantee', () => {
    it('is absent to a clinician, as a record that does not exist, and named to its patient', async () => {
      const alice = await newPatient();
      const bob = await newPatient();
      const visible = await alice.create(observation('2345-7', 4.1));
      const bobs = await bob.create(observation('2345-7', 4.2));
      const doctor = await clinicianGranted(alice, {});
      // Bob's record moved onto Alice: under Alice's labels it does not open.
      await api.db.query('UPDATE records SET patient_id = $2 WHERE id = $1', [bobs.id, alice.id]);

      const seen = await list(alice.id, doctor);
      expect(ids(seen)).toEqual([visible.id]);
      expect(seen.errors).toBeUndefined();
      await asIfAbsent(ONE, bobs.id, doctor);
      await asIfAbsent(VERIFY, bobs.id, doctor);
      await asIfAbsent(HISTORY, bobs.id, doctor);
      const latest = await api.gql(LATEST, { p: alice.id, codes: ['2345-7'] }, doctor);
      expect(latest.errors).toBeUndefined();
      expect(JSON.stringify(latest)).not.toContain(bobs.id);
      expect(await permitsNaming(doctor, bobs.id)).toBe(0);

      // Alice is told: the record is withheld from her listing, named beside it.
      expectWithheld(await list(alice.id, alice.token), bobs.id, [visible.id]);
    });
  });

  describe('a record rolled back to a version since restricted', () => {
    it("is absent to a clinician whose grant excludes restricted records, and checked against the ledger's latest anchor", async () => {
      const patient = await newPatient();
      const other = await patient.create(observation('2345-7', 9.1));
      const r = await patient.create(observation('2345-7', 9.2));
      const doctor = await clinicianGranted(patient, { includeRestricted: false });
      expect(ids(await list(patient.id, doctor))).toEqual([other.id, r.id].sort());
      const restricted = {
        ...observation('2345-7', 9.3),
        meta: { security: [{ system: CONFIDENTIALITY, code: 'R' }] },
      };
      const { updateRecord: v2 } = await api.ok<{
        updateRecord: {
          version: number;
          sensitivity: string;
          contentHash: string;
          ledgerTxId: string;
        };
      }>(UPDATE, { id: r.id, r: restricted, v: 1 }, patient.token);
      expect(v2).toMatchObject({ version: 2, sensitivity: 'RESTRICTED' });
      expect(ids(await list(patient.id, doctor))).toEqual([other.id]);
      const permitsBefore = await permitsNaming(doctor, r.id);

      // A database writer puts version 1 back as the current row, every column of it.
      await api.db.query(
        `UPDATE records r SET version = v.version, resource_type = v.resource_type,
           category = v.category, sensitivity = v.sensitivity, key_id = v.key_id, iv = v.iv,
           auth_tag = v.auth_tag, ciphertext = v.ciphertext, binding_version = v.binding_version,
           content_hash = v.content_hash, hash_version = v.hash_version,
           anchor_state = v.anchor_state, anchored_hash = v.anchored_hash,
           ledger_tx_id = v.ledger_tx_id
         FROM record_versions v WHERE v.record_id = r.id AND r.id = $1 AND v.version = 1`,
        [r.id],
      );
      const failuresBefore = await recordFailures();

      const judged = async () => {
        // Its labels are version 1's (NORMAL), which the ledger no longer holds as the record's:
        // the clinician must not be served it, nor learn that it is withheld.
        const seen = await list(patient.id, doctor);
        expect(ids(seen)).toEqual([other.id]);
        expect(seen.errors).toBeUndefined();
        await asIfAbsent(ONE, r.id, doctor);
        await asIfAbsent(VERIFY, r.id, doctor);
        await asIfAbsent(HISTORY, r.id, doctor);
        const latest = await api.ok<{ latestObservations: { id: string }[] }>(
          LATEST,
          { p: patient.id, codes: ['2345-7'] },
          doctor,
        );
        // Withheld, and no older value stands in for it.
        expect(latest.latestObservations).toEqual([]);
        expect(await permitsNaming(doctor, r.id)).toBe(permitsBefore);

        // The patient sees their record as stored, flagged, and checked against the ledger's
        // latest anchor, not the anchor of the version stored.
        const one = await api.ok<{ record: { integrity: string } }>(
          ONE,
          { id: r.id },
          patient.token,
        );
        expect(one.record.integrity).toBe('MISMATCH');
        const report = await api.ok<{ verifyRecord: Record<string, unknown> }>(
          `query($id: ID!) { verifyRecord(id: $id) {
             status storedHash storedVersion ledgerHash ledgerTxId ledgerVersion } }`,
          { id: r.id },
          patient.token,
        );
        expect(report.verifyRecord).toEqual({
          status: 'MISMATCH',
          storedHash: r.contentHash,
          storedVersion: 1,
          ledgerHash: v2.contentHash,
          ledgerTxId: v2.ledgerTxId,
          ledgerVersion: 2,
        });
      };
      // In this process (which anchored version 2), and in a fresh one, which asks the ledger.
      await judged();
      expect(await recordFailures()).toBeGreaterThan(failuresBefore);
      await api.restart();
      await judged();
      expect(await recordFailures()).toBeGreaterThan(0);
    });
  });

  describe('the anchoring outbox', () => {
    it('anchors the hash it recomputes from a pending row, and refuses one whose stored hash was rewritten or that does not open', async () => {
      const patient = await newPatient();
      const anchoring = api.server.app.get(RecordAnchoring);
      const ledger = api.server.app.get<EmbeddedLedger>(LEDGER);
      const donor = await patient.create(observation('2345-7', 3.1));
      let good: { id: string; contentHash: string };
      let forged: { id: string; contentHash: string };
      let broken: { id: string; contentHash: string };
      // Before the outage: the outbox, retrying, may look at the rows as soon as they exist.
      const failuresBefore = await recordFailures();
      ledger.simulateOutage(true);
      try {
        good = await patient.create(observation('2345-7', 3.2));
        forged = await patient.create(observation('2345-7', 3.3));
        broken = await patient.create(observation('2345-7', 3.4));
        // While they wait: one's hash set to another record's, one's ciphertext altered.
        await api.db.query('UPDATE records SET content_hash = $2 WHERE id = $1', [
          forged.id,
          donor.contentHash,
        ]);
        await flipCiphertextByte(broken.id);
      } finally {
        ledger.simulateOutage(false);
      }
      await anchoring.drainOnce();

      const states = await api.db.query('SELECT id, anchor_state FROM records WHERE id = ANY($1)', [
        [good.id, forged.id, broken.id],
      ]);
      expect(Object.fromEntries(states.rows.map((r) => [r.id, r.anchor_state]))).toEqual({
        [good.id]: 'ANCHORED',
        [forged.id]: 'PENDING',
        [broken.id]: 'PENDING',
      });
      const anchored = (id: string) =>
        ledger.evaluate<{ contentHash: string }[]>('records', 'RecordHistory', [id]);
      expect((await anchored(good.id)).map((a) => a.contentHash)).toEqual([good.contentHash]);
      expect(await anchored(forged.id)).toEqual([]);
      expect(await anchored(broken.id)).toEqual([]);
      const failuresAfter = await recordFailures();
      expect(failuresAfter).toBeGreaterThanOrEqual(failuresBefore + 2);

      // Refused once, not at every pass: a later pass does not read them again.
      expect(await anchoring.drainOnce()).toEqual({ anchored: 0, pending: 0, refused: 0 });
      expect(await recordFailures()).toBe(failuresAfter);
      // The forged hash never reaches a reader either: the record is what it decrypts to.
      const one = await api.ok<{ record: { integrity: string } }>(
        ONE,
        { id: forged.id },
        patient.token,
      );
      expect(one.record.integrity).toBe('PENDING');
    });
  });
});

const INTEGRITY_RECORD = 'custodia_integrity_failures_total{kind="record"} ';
