// Raw reads of record versions: the current one (`records`) and superseded ones
// (`record_versions`), as RecordEntity, with one column list for both tables; and the raw
// INSERT of a new current version.
import { DataSource, EntityManager } from 'typeorm';
import { preparedQuery } from '../database/prepared';
import { PatientErasedError } from './crypto';
import { RecordEntity } from './record.entity';

/** The columns of a version, from `records` (alias `r`) or `record_versions` (alias `v`). */
export const CURRENT_COLUMNS = columns('r', 'r.id');
export const SUPERSEDED_COLUMNS = columns('v', 'v.record_id AS id');

function columns(a: string, id: string): string {
  return `${id}, ${a}.patient_id, ${a}.version, ${a}.resource_type, ${a}.category,
    ${a}.sensitivity, ${a}.key_id, ${a}.iv, ${a}.auth_tag, ${a}.ciphertext, ${a}.binding_version,
    ${a}.content_hash, ${a}.hash_version, ${a}.anchor_state, ${a}.anchored_hash,
    ${a}.ledger_tx_id, ${a}.created_at, ${a}.updated_at`;
}

export interface VersionRow {
  id: string;
  patient_id: string;
  version: number;
  resource_type: string;
  category: string | null;
  sensitivity: RecordEntity['sensitivity'];
  key_id: string;
  iv: Buffer;
  auth_tag: Buffer;
  ciphertext: Buffer;
  binding_version: RecordEntity['bindingVersion'];
  content_hash: string;
  hash_version: RecordEntity['hashVersion'];
  anchor_state: RecordEntity['anchorState'];
  anchored_hash: string | null;
  ledger_tx_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export function versionEntity(r: VersionRow): RecordEntity {
  return {
    id: r.id,
    patientId: r.patient_id,
    version: r.version,
    resourceType: r.resource_type,
    category: r.category,
    sensitivity: r.sensitivity,
    keyId: r.key_id,
    iv: r.iv,
    authTag: r.auth_tag,
    ciphertext: r.ciphertext,
    bindingVersion: r.binding_version,
    contentHash: r.content_hash,
    hashVersion: r.hash_version,
    anchorState: r.anchor_state,
    anchoredHash: r.anchored_hash,
    ledgerTxId: r.ledger_tx_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** RecordEntity's columns that `row` sets (undefined properties are left to their defaults). */
function columnsSet(db: DataSource | EntityManager, row: RecordEntity) {
  return (db instanceof DataSource ? db : db.connection)
    .getMetadata(RecordEntity)
    .columns.filter((c) => row[c.propertyName as keyof RecordEntity] !== undefined)
    .map((c) => ({
      column: c.databaseName,
      value: row[c.propertyName as keyof RecordEntity],
    }));
}

/**
 * Keeps the current version of record `id` as it was sealed and anchored, in record_versions
 * (inside the amendment's transaction, before updateRecordRow replaces it).
 */
export async function archiveCurrentVersion(m: EntityManager, id: string): Promise<void> {
  await m.query(
    `INSERT INTO record_versions (record_id, version, patient_id, resource_type, category,
       sensitivity, key_id, iv, auth_tag, ciphertext, binding_version, content_hash,
       hash_version, anchor_state, anchored_hash, ledger_tx_id, created_at, updated_at)
     SELECT id, version, patient_id, resource_type, category, sensitivity, key_id, iv,
       auth_tag, ciphertext, binding_version, content_hash, hash_version, anchor_state,
       anchored_hash, ledger_tx_id, created_at, updated_at
     FROM records WHERE id = $1`,
    [id],
  );
}

/** What identifies a record across its versions: never changed by an amendment. */
const IDENTITY = new Set(['id', 'patient_id', 'resource_type', 'created_at']);

/**
 * Replaces the current version of record `row.id` (inside the amendment's transaction) with
 * `row`: every column it sets but those that identify the record.
 */
export async function updateRecordRow(m: EntityManager, row: RecordEntity): Promise<void> {
  const set = columnsSet(m, row).filter((c) => !IDENTITY.has(c.column));
  await m.query(
    `UPDATE records SET ${set.map((c, i) => `${c.column} = $${i + 2}`).join(', ')} WHERE id = $1`,
    [row.id, ...set.map((c) => c.value)],
  );
}

/**
 * Inserts a current version: every column RecordEntity maps that the row sets (taken from the
 * entity's metadata, so no column can be forgotten), as one prepared statement when outside a
 * transaction. Cheaper than the repository's insert, which builds its query on every call.
 *
 * The row's data key must still be live, and stays so until the row commits (it is locked in
 * share mode): erasure in another process or request, which destroys the key and then deletes
 * the patient's records, either runs first, and the insert fails with PatientErasedError,
 * or waits, and deletes this row too.
 */
export async function insertRecordRow(
  db: DataSource | EntityManager,
  row: RecordEntity,
): Promise<void> {
  const set = columnsSet(db, row);
  const values = set.map((c) => c.value);
  const text = `INSERT INTO records (${set.map((c) => c.column).join(', ')})
    VALUES (${set
      .map((c, i) =>
        c.column === 'key_id'
          ? `(SELECT id FROM data_keys WHERE id = $${i + 1} AND destroyed_at IS NULL FOR SHARE)`
          : `$${i + 1}`,
      )
      .join(', ')})`;
  try {
    if (db instanceof DataSource) await preparedQuery(db, text, values);
    else await db.query(text, values);
  } catch (e) {
    const { code, column } = e as { code?: string; column?: string };
    if (code === '23502' && column === 'key_id') throw new PatientErasedError();
    throw e;
  }
}
