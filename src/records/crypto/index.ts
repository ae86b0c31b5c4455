export { DecryptionFailedError } from './aead';
export { CODE_DIGEST_BYTES, codeDigests, codeIndexKey } from './code-index';
export { contentHash } from './content-hash';
export {
  fullUrlIdentity,
  ImportSource,
  importedRecordId,
  importIdKey,
  randomImportId,
} from './import-id';
export { DataKeyEntity } from './data-key.entity';
export { DataKey, DataKeyRing, DataKeyUnavailableError, PatientErasedError } from './data-key-ring';
export {
  openField,
  openRecord,
  openRecordV1,
  OpenedRecord,
  resealRecord,
  sealField,
  sealRecord,
  sealRecordV1,
} from './record-cipher';
export { CURRENT_FORMAT, RecordBinding, RecordFormat, RecordLabels } from './record-labels';
export { RecordCryptoModule } from './record-crypto.module';
export { AuthenticatedRowKind, RowAuthenticator } from './row-authenticator';
export { kekOf } from './key-wrap';
