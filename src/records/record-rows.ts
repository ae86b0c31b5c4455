// Raw reads of record versions: the current one (`records`) and superseded ones
// (`record_versions`), as RecordEntity, with one column list for both tables.
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
