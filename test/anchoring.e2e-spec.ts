import { DataKeyRing, sealRecord } from '../src/records/crypto';
import { EmbeddedLedger, LEDGER } from '../src/ledger';
import { RecordAnchoring } from '../src/records';
import { observation } from './helpers/fhir';
import { codes, TestApi } from './helpers/test-api';

const CREATE = `mutation($r: JSON!) { createRecord(input: {resource: $r}) {
  id contentHash integrity ledgerTxId } }`;
const ONE = `query($id: ID!) { record(id: $id) { id integrity ledgerTxId resource } }`;
const VERIFY = `query($id: ID!) { verifyRecord(id: $id) {
  recordId status storedHash ledgerHash ledgerTxId } }`;

type Created = { id: string; contentHash: string; integrity: string; ledgerTxId: string | null };

describe('record anchoring on the embedded ledger', () => {
  let api: TestApi;
  let alice: string;
  let ledger: EmbeddedLedger;
  let anchoring: RecordAnchoring;

  beforeAll(async () => {
    // A short first retry, so that recovery is quick; it still backs off while failing.
    api = await TestApi.start({ ANCHOR_RETRY_MS: '50' });
    alice = await api.token('alice', 'PATIENT');
    await api.ok('mutation { registerPatient { id } }', {}, alice);
    ledger = api.server.app.get(LEDGER);
    anchoring = api.server.app.get(RecordAnchoring);
  });
  afterAll(async () => {
    ledger?.simulateOutage(false);
    await api?.stop();
  });

  const create = async (value = 5.4) =>
    (await api.ok<{ createRecord: Created }>(CREATE, { r: observation('2345-7', value) }, alice))
      .createRecord;

  it('anchors a new record and reads it back VERIFIED', async () => {
    const r = await create();
    expect(r.integrity).toBe('VERIFIED');
    expect(r.ledgerTxId).toMatch(/^[0-9a-f]{64}$/);
    const read = await api.ok<{ record: { integrity: string; ledgerTxId: string } }>(
      ONE,
      { id: r.id },
      alice,
    );
    expect(read.record).toMatchObject({ integrity: 'VERIFIED', ledgerTxId: r.ledgerTxId });
    const report = await api.ok<{ verifyRecord: unknown }>(VERIFY, { id: r.id }, alice);
    expect(report.verifyRecord).toEqual({
      recordId: r.id,
      status: 'VERIFIED',
      storedHash: r.contentHash,
      ledgerHash: r.contentHash,
      ledgerTxId: r.ledgerTxId,
    });
  });

  it('puts only ids and the salted hash on the ledger', async () => {
    const r = await create(9.9);
    const { rows } = await api.db.query('SELECT body FROM ledger_blocks');
    const all = rows.map((x) => x.body as string).join('\n');
    expect(all).not.toContain('2345-7');
    expect(all).not.toContain('Observation');
    const history = await ledger.evaluate<{ contentHash: string; version: number }[]>(
      'records',
      'RecordHistory',
      [r.id],
    );
    expect(history).toEqual([expect.objectContaining({ version: 1, contentHash: r.contentHash })]);
  });

  it('reads a re-encrypted (tampered) record as MISMATCH, never as VERIFIED', async () => {
    const r = await create(6.1);
    // Someone with the data key re-seals other content into the row: it decrypts, but no
    // longer matches its anchor.
    const row = (
      await api.db.query(
        'SELECT patient_id, key_id, resource_type, category, sensitivity FROM records WHERE id = $1',
        [r.id],
      )
    ).rows[0];
    const dek = await api.server.app.get(DataKeyRing).key(row.key_id, row.patient_id);
    const forged = sealRecord(
      dek,
      {
        recordId: r.id,
        patientId: row.patient_id,
        version: 1,
        resourceType: row.resource_type,
        category: row.category,
        sensitivity: row.sensitivity,
      },
      { ...observation('2345-7', 60.1), subject: { reference: `Patient/${row.patient_id}` } },
    );
    await api.db.query('UPDATE records SET ciphertext = $2, iv = $3, auth_tag = $4 WHERE id = $1', [
      r.id,
      forged.ciphertext,
      forged.iv,
      forged.tag,
    ]);
    const read = await api.ok<{ record: { integrity: string } }>(ONE, { id: r.id }, alice);
    expect(read.record.integrity).toBe('MISMATCH');
    const report = await api.ok<{
      verifyRecord: { status: string; ledgerHash: string; storedHash: string };
    }>(VERIFY, { id: r.id }, alice);
    expect(report.verifyRecord.status).toBe('MISMATCH');
    expect(report.verifyRecord.ledgerHash).toBe(r.contentHash);
    expect(report.verifyRecord.storedHash).not.toBe(r.contentHash);
  });

  it('judges a record by its ledger anchor, not by the anchored hash kept in Postgres', async () => {
    const r = await create(7.2);
    await api.db.query(`UPDATE records SET anchored_hash = repeat('0', 64) WHERE id = $1`, [r.id]);
    // The ledger itself still vouches for the stored record, and both queries say so.
    const read = await api.ok<{ record: { integrity: string } }>(ONE, { id: r.id }, alice);
    expect(read.record.integrity).toBe('VERIFIED');
    const report = await api.ok<{ verifyRecord: { status: string } }>(VERIFY, { id: r.id }, alice);
    expect(report.verifyRecord.status).toBe('VERIFIED');
  });

  it('keeps records PENDING through a ledger outage and anchors them after recovery', async () => {
    ledger.simulateOutage(true);
    const during = [await create(8.1), await create(8.2)];
    for (const r of during) expect(r).toMatchObject({ integrity: 'PENDING', ledgerTxId: null });
    expect(codes(await api.gql(VERIFY, { id: during[0].id }, alice))).toEqual([
      'LEDGER_UNAVAILABLE',
    ]);
    const health = await fetch(`${api.url}/health`);
    expect(health.status).toBe(503);

    const anchored = new Set<string>();
    const allAnchored = new Promise<void>((resolve) => {
      const onAnchored = (id: string) => {
        anchored.add(id);
        if (during.every((r) => anchored.has(r.id))) {
          anchoring.events.off('anchored', onAnchored);
          resolve();
        }
      };
      anchoring.events.on('anchored', onAnchored);
    });
    ledger.simulateOutage(false);
    await allAnchored;

    for (const r of during) {
      const read = await api.ok<{ record: { integrity: string; ledgerTxId: string } }>(
        ONE,
        { id: r.id },
        alice,
      );
      expect(read.record.integrity).toBe('VERIFIED');
      expect(read.record.ledgerTxId).toMatch(/^[0-9a-f]{64}$/);
      const history = await ledger.evaluate<unknown[]>('records', 'RecordHistory', [r.id]);
      expect(history).toHaveLength(1);
    }
    expect((await fetch(`${api.url}/health`)).status).toBe(200);
  });

  it('anchors every record an outage left pending, however many passes that takes', async () => {
    ledger.simulateOutage(true);
    // More records than one outbox pass takes (200), all left PENDING by the outage.
    const entry = Array.from({ length: 450 }, (_, i) => ({
      resource: observation('2345-7', 4 + i / 100),
    }));
    await api.ok(
      'mutation($b: JSON!) { importBundle(bundle: $b) { created } }',
      { b: { resourceType: 'Bundle', type: 'collection', entry } },
      alice,
    );
    const pendingRows = async () =>
      Number(
        (await api.db.query(`SELECT count(*) AS n FROM records WHERE anchor_state = 'PENDING'`))
          .rows[0].n,
      );
    expect(await pendingRows()).toBe(450);
    // The outbox goes idle after a pass that leaves nothing pending: by then none may be left.
    const idle = new Promise<void>((resolve) => {
      const onPass = (pass: { pending: number; failed: number }) => {
        if (pass.pending > 0 || pass.failed > 0) return;
        anchoring.events.off('pass', onPass);
        resolve();
      };
      anchoring.events.on('pass', onPass);
    });
    ledger.simulateOutage(false);
    await idle;
    expect(await pendingRows()).toBe(0);
  });

  it('never anchors twice: a version already on the ledger is adopted', async () => {
    const r = await create(8.3);
    // The anchor reached the ledger, but the row's update was lost (say, a crash in between).
    await api.db.query(
      `UPDATE records SET anchor_state = 'PENDING', anchored_hash = NULL, ledger_tx_id = NULL
       WHERE id = $1`,
      [r.id],
    );
    await anchoring.drainOnce();
    const read = await api.ok<{ record: { integrity: string; ledgerTxId: string } }>(
      ONE,
      { id: r.id },
      alice,
    );
    expect(read.record).toMatchObject({ integrity: 'VERIFIED', ledgerTxId: r.ledgerTxId });
    expect(await ledger.evaluate<unknown[]>('records', 'RecordHistory', [r.id])).toHaveLength(1);
  });
});
