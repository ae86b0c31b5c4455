// A record version as it is written: the resource sealed under the patient's data key and its
// labels, pending its ledger anchor, with its search index entry. createRecord, updateRecord
// and importBundle all write rows built here, so no writer can forget a column.
import { CURRENT_FORMAT, DataKey, RecordLabels, sealRecord } from './crypto';
import { RecordEntity } from './record.entity';
import { IndexEntry } from './search/record-index';

export function sealedRow(
  dek: DataKey,
  labels: RecordLabels,
  resource: Record<string, unknown>,
  times: { createdAt: Date; updatedAt: Date },
  index: IndexEntry,
): RecordEntity {
  const sealed = sealRecord(dek.key, labels, resource);
  return {
    id: labels.recordId,
    patientId: labels.patientId,
    version: labels.version,
    resourceType: labels.resourceType,
    category: labels.category,
    sensitivity: labels.sensitivity,
    keyId: dek.id,
    iv: sealed.iv,
    authTag: sealed.tag,
    ciphertext: sealed.ciphertext,
    bindingVersion: CURRENT_FORMAT,
    contentHash: sealed.contentHash,
    hashVersion: CURRENT_FORMAT,
    anchorState: 'PENDING',
    anchoredHash: null,
    ledgerTxId: null,
    ...times,
    ...index,
  };
}
