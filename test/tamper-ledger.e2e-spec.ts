// The embedded ledger lives in the same PostgreSQL as everything else, so a database writer
// could try to forge the ledger itself: a world-state row holding a grant, or a whole block
// appended with a valid hash chain. Neither carries this API's seal, so neither is believed.
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type { GrantRecord } from '@custodia/chaincode';
import { AccessLog } from '../src/audit';
import { ConsentReconciliation } from '../src/consent';
import { Ledger, LEDGER } from '../src/ledger';
import { Block, encodeBlock } from '../src/ledger/embedded/block';
import { codes, TestApi } from './helpers/test-api';

const LIST = `query($p: ID!) { records(patientId: $p) { items { id } } }`;
const GRANT_KEY_PREFIX = '\u0000custodia.grant\u0000';

describe('forging the embedded ledger in the database', () => {
  let api: TestApi;
  let patient: string;
  let patientId: string;
  let grantId: string;

  const reads = async (sub: string) => {
    const res = await api.gql<{ records: { items: { id: string }[] } }>(
      LIST,
      { p: patientId },
      await api.token(sub, 'CLINICIAN', 'org1'),
    );
    return res.data?.records.items.length ?? codes(res);
  };
  /** The grant's world-state value, as the chaincode stored it, re-aimed at `sub`. */
  async function forgedGrant(sub: string) {
    const { rows } = await api.db.query(
      'SELECT value, block_number, tx_id, mac FROM ledger_world_state WHERE key = $1',
      [Buffer.from(`${GRANT_KEY_PREFIX}${grantId}\u0000`, 'utf8')],
    );
    const grant = JSON.parse(rows[0].value.toString('utf8'));
    const id = randomUUID();
    return {
      row: rows[0],
      id,
      key: Buffer.from(`${GRANT_KEY_PREFIX}${id}\u0000`, 'utf8'),
      value: { ...grant, id, grantee: { type: 'CLINICIAN', id: sub } },
    };
  }

  beforeAll(async () => {
    api = await TestApi.start({ CONSENT_RECONCILE_INTERVAL_MS: '0' });
    ({ token: patient, patientId } = await api.patientWithRecord('lena'));
    grantId = await api.grantRead(patient, 'dr-lena');
  });
  afterAll(() => api?.stop());

  it('starts sealed and verified', async () => {
    expect(await reads('dr-lena')).toBe(1);
    expect((await api.verifyLedger()).ok).toBe(true);
  });

  it('does not take a grant written straight into the world state into the projection', async () => {
    const forged = await forgedGrant('dr-state');
    await api.db.query(
      `INSERT INTO ledger_world_state (key, value, block_number, tx_id, mac) VALUES ($1, $2, $3, $4, $5)`,
      [
        forged.key,
        Buffer.from(JSON.stringify(forged.value)),
        forged.row.block_number,
        forged.row.tx_id,
        forged.row.mac,
      ],
    );
    const before = await api.integrityFailures('ledger_chain');
    // Not believed, and reported: the ledger's grants are read without it.
    expect(await api.server.app.get(ConsentReconciliation).reconcile()).toMatchObject({
      ledgerGrants: 1,
      missing: [],
      extra: [],
    });
    expect(await reads('dr-state')).toEqual(['CONSENT_REQUIRED']);
    expect(await api.integrityFailures('ledger_chain')).toBeGreaterThan(before);
    const result = await api.verifyLedger();
    expect(result.ok).toBe(false);
    expect(result.text).toContain(
      `BROKEN: world state of key ${forged.key.toString('hex')} is not sealed by this organisation's ledger`,
    );
    await api.db.query('DELETE FROM ledger_world_state WHERE key = $1', [forged.key]);
    expect(await api.server.app.get(ConsentReconciliation).reconcile()).not.toBeNull();
  });

  it('never builds on, nor delivers the events of, a block appended from outside', async () => {
    const forged = await forgedGrant('dr-block');
    const [tip] = (
      await api.db.query('SELECT number, hash FROM ledger_blocks ORDER BY number DESC LIMIT 1')
    ).rows;
    const payload = Buffer.from(JSON.stringify({ ...forged.value, txId: 'f'.repeat(64) }));
    const block: Block = {
      number: Number(tip.number) + 1,
      prevHash: tip.hash,
      timestamp: new Date().toISOString(),
      txs: [
        {
          txId: randomBytes(32).toString('hex'),
          contract: 'consent',
          fn: 'GrantConsent',
          argsHash: '0'.repeat(64),
          creator: 'org1',
          timestamp: new Date().toISOString(),
          writes: [{ key: forged.key.toString('utf8'), value: payload.toString('base64') }],
          event: { name: 'ConsentGranted', payload: payload.toString('base64') },
        },
      ],
    };
    const { body, hash } = encodeBlock(block);
    await api.db.query(
      `INSERT INTO ledger_blocks (number, prev_hash, hash, body, committed_at) VALUES ($1, $2, $3, $4, now())`,
      [block.number, block.prevHash, hash, body],
    );

    // The next write would build on it: refused, and nothing of it reaches the projection.
    const res = await api.gql(
      `mutation { grantConsent(input: {granteeType: CLINICIAN, granteeId: "dr-next",
         purpose: TREATMENT, actions: [READ]}) { id } }`,
      {},
      patient,
    );
    expect(codes(res)).toEqual(['LEDGER_UNAVAILABLE']);
    expect(res.errors![0].message).toMatch(/verify-ledger/);
    expect(await reads('dr-block')).toEqual(['CONSENT_REQUIRED']);
    expect((await fetch(`${api.url}/health`)).status).toBe(503);
    const result = await api.verifyLedger();
    expect(result.text).toContain(
      `BROKEN: block ${block.number} is not sealed by this organisation's ledger`,
    );

    // Restarted, it still refuses to extend the chain.
    await api.restart();
    expect((await fetch(`${api.url}/health`)).status).toBe(503);
    await api.db.query('DELETE FROM ledger_blocks WHERE number = $1', [block.number]);
  });

  it('seals a ledger from before seals once, after checking all of it', async () => {
    await api.db.query('UPDATE ledger_blocks SET mac = NULL');
    await api.db.query('UPDATE ledger_world_state SET mac = NULL');
    await api.restart();
    expect((await fetch(`${api.url}/health`)).status).toBe(200);
    expect(await reads('dr-lena')).toBe(1);
    expect((await api.verifyLedger()).ok).toBe(true);
    const { rows } = await api.db.query(
      'SELECT count(*)::int AS n FROM ledger_blocks WHERE mac IS NULL',
    );
    expect(rows[0].n).toBe(0);
  });

  it('does not believe a grant put back as it was before its revocation, and restores what the blocks wrote', async () => {
    const id = await api.grantRead(patient, 'dr-zoe');
    expect(await reads('dr-zoe')).toBe(1);
    const key = Buffer.from(`${GRANT_KEY_PREFIX}${id}\u0000`, 'utf8');
    const [saved] = (
      await api.db.query(
        'SELECT value, block_number, tx_id, mac FROM ledger_world_state WHERE key = $1',
        [key],
      )
    ).rows;
    await api.db.query(
      `CREATE TABLE saved_grant AS SELECT * FROM consent_grants WHERE id = '${id}'`,
    );
    await api.ok('mutation($id: ID!) { revokeConsent(id: $id) { status } }', { id }, patient);
    // The grant's world-state row as it was, seal and all: a sealed row, but not the latest.
    const putBack = () =>
      api.db.query(
        `UPDATE ledger_world_state SET value = $2, block_number = $3, tx_id = $4, mac = $5
         WHERE key = $1`,
        [key, saved.value, saved.block_number, saved.tx_id, saved.mac],
      );
    await putBack();
    const before = await api.integrityFailures('ledger_chain');
    const onLedger = await api.server.app
      .get<Ledger>(LEDGER)
      .evaluate<GrantRecord>('consent', 'GetConsent', [id]);
    expect(onLedger.status).toBe('REVOKED');
    expect(await reads('dr-zoe')).toEqual(['CONSENT_REQUIRED']);
    expect(await api.integrityFailures('ledger_chain')).toBeGreaterThan(before);

    // With the projection's row put back too, across a restart (whose memory of the
    // revocation goes): start-up puts the world state back from the blocks, and the
    // projection follows the ledger.
    await api.restart(async () => {
      await putBack();
      await api.db.query('BEGIN');
      await api.db.query('SET LOCAL session_replication_role = replica');
      await api.db.query('DELETE FROM consent_grants WHERE id = $1', [id]);
      await api.db.query('INSERT INTO consent_grants SELECT * FROM saved_grant');
      await api.db.query('COMMIT');
    });
    expect(await reads('dr-zoe')).toEqual(['CONSENT_REQUIRED']);
    const [restored] = (
      await api.db.query('SELECT block_number FROM ledger_world_state WHERE key = $1', [key])
    ).rows;
    expect(Number(restored.block_number)).toBeGreaterThan(Number(saved.block_number));
    const result = await api.verifyLedger();
    expect(result.text).not.toMatch(/BROKEN: world state/);
    await api.db.query('DROP TABLE saved_grant');
  });

  it('keeps a patient signed-only when their keyring is put back as it was before', async () => {
    const { token, patientId: id } = await api.patientWithRecord('nina');
    const pair = await generateKeyPair('ES256', { extractable: true });
    await api.ok(
      `mutation($jwk: JSON!) { registerPatientKey(publicKeyJwk: $jwk) { id } }`,
      { jwk: await exportJWK(pair.publicKey) },
      token,
    );
    const keyring = `position(convert_to('custodia.keyring', 'UTF8') in key) > 0
       AND position(convert_to($1::text, 'UTF8') in key) > 0`;
    const [saved] = (
      await api.db.query(
        `SELECT key, value, block_number, tx_id, mac FROM ledger_world_state WHERE ${keyring}`,
        [id],
      )
    ).rows;
    await api.ok(
      'mutation { requireSignedConsent(require: true) { requireSignedConsent } }',
      {},
      token,
    );
    await api.db.query(
      `UPDATE ledger_world_state SET value = $2, block_number = $3, tx_id = $4, mac = $5
       WHERE key = $1`,
      [saved.key, saved.value, saved.block_number, saved.tx_id, saved.mac],
    );
    const unsigned = () =>
      api.gql(
        `mutation { grantConsent(input: {granteeType: CLINICIAN, granteeId: "dr-unsigned",
           purpose: TREATMENT, actions: [READ]}) { id } }`,
        {},
        token,
      );
    expect(codes(await unsigned())).toEqual(['BAD_USER_INPUT']);
    await api.restart();
    expect(codes(await unsigned())).toEqual(['BAD_USER_INPUT']);
    const { patient: profile } = await api.ok<{ patient: { requireSignedConsent: boolean } }>(
      'query($id: ID!) { patient(id: $id) { requireSignedConsent } }',
      { id },
      token,
    );
    expect(profile.requireSignedConsent).toBe(true);
  });

  it('counts every problem in its summary, those it does not list too', async () => {
    // Every history row gone and every state row unsealed: a problem each, more than listed.
    await api.db.query('CREATE TABLE saved_history AS SELECT * FROM ledger_history');
    await api.db.query('CREATE TABLE saved_macs AS SELECT key, mac FROM ledger_world_state');
    const { rowCount: history } = await api.db.query('DELETE FROM ledger_history');
    const { rowCount: state } = await api.db.query('UPDATE ledger_world_state SET mac = NULL');
    const problems = history! + state!;
    expect(problems).toBeGreaterThan(20);
    const result = await api.verifyLedger();
    expect(result.text).toContain(`…and ${problems - 20} more ledger problems`);
    expect(result.text).toContain(`Verification FAILED: ${problems} problem(s).`);
    await api.db.query('INSERT INTO ledger_history SELECT * FROM saved_history');
    await api.db.query(
      'UPDATE ledger_world_state w SET mac = s.mac FROM saved_macs s WHERE w.key = s.key',
    );
    await api.db.query('DROP TABLE saved_history, saved_macs');
  });

  it('keeps a revocation that a ledger restored from before it has lost, and says so', async () => {
    const id = await api.grantRead(patient, 'dr-yan');
    expect(await reads('dr-yan')).toBe(1);
    const TABLES = ['ledger_blocks', 'ledger_world_state', 'ledger_history', 'ledger_checkpoints'];
    for (const t of TABLES) await api.db.query(`CREATE TABLE snap_${t} AS SELECT * FROM ${t}`);
    await api.ok('mutation($id: ID!) { revokeConsent(id: $id) { status } }', { id }, patient);
    expect(await reads('dr-yan')).toEqual(['CONSENT_REQUIRED']);
    // The refused read's event anchored too, and noted here.
    await api.server.app.get(AccessLog).anchorHead();
    const [noted] = (await api.db.query('SELECT max(seq) AS seq FROM audit_anchors')).rows;
    // The ledger's tables put back as they were before the revocation (a restored backup),
    // behind their triggers, while the API is down.
    await api.restart(async () => {
      await api.db.query('BEGIN');
      await api.db.query('SET LOCAL session_replication_role = replica');
      for (const t of TABLES) {
        await api.db.query(`DELETE FROM ${t}`);
        await api.db.query(`INSERT INTO ${t} SELECT * FROM snap_${t}`);
      }
      await api.db.query('COMMIT');
    });
    const { rows } = await api.db.query('SELECT status FROM consent_grants WHERE id = $1', [id]);
    expect(rows[0].status).toBe('REVOKED');
    expect(await reads('dr-yan')).toEqual(['CONSENT_REQUIRED']);
    expect(await api.integrityFailures('ledger_chain')).toBeGreaterThan(0);
    const result = await api.verifyLedger();
    expect(result.ok).toBe(false);
    expect(result.text).toContain(
      `BROKEN: the ledger holds 1 grant(s) ACTIVE that this API saw revoked (${id})`,
    );
    // The data directory remembers how far the chain reached: the restored chain is refused.
    expect(result.text).toMatch(
      /BROKEN: the chain ends at block \d+, but this data directory saw block \d+ committed: its newest blocks were deleted \(rolled back\)/,
    );
    const refused = await api.gql(
      `mutation { grantConsent(input: {granteeType: CLINICIAN, granteeId: "dr-after",
         purpose: TREATMENT, actions: [READ]}) { id } }`,
      {},
      patient,
    );
    expect(codes(refused)).toEqual(['LEDGER_UNAVAILABLE']);
    expect(result.text).toMatch(
      new RegExp(
        `BROKEN: this log noted event ${noted.seq} anchored on the ledger \\(transaction [0-9a-f]+\\), but the ledger's head for the chain is (event \\d+|absent): the ledger lost anchors`,
      ),
    );
    expect(await reads('dr-yan')).toEqual(['CONSENT_REQUIRED']);
  });
});
