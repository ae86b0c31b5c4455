export { DecryptionFailedError } from './aead';
export { contentHash } from './content-hash';
export { DataKeyEntity } from './data-key.entity';
export { DataKey, DataKeyRing, DataKeyUnavailableError } from './data-key-ring';
export { openField, openRecord, RecordBinding, sealField, sealRecord } from './record-cipher';
export { RecordCryptoModule } from './record-crypto.module';
export { AuthenticatedRowKind, RowAuthenticator } from './row-authenticator';
export { kekOf } from './key-wrap';
