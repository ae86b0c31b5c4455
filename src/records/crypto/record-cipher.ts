// Envelope encryption of one record version. The associated data binds the ciphertext to
// its record id, patient id and version, so a ciphertext copied into another row (or a row
// whose patient id was changed) fails to decrypt instead of yielding another's data.
import { KeyObject } from 'node:crypto';
import { open, seal, Sealed, pack, unpack } from './aead';
import { contentHash, newSalt, SALT_BYTES } from './content-hash';

export interface RecordBinding {
  recordId: string;
  patientId: string;
  version: number;
}

export interface SealedRecord extends Sealed {
  contentHash: string;
}

export interface OpenedRecord {
  resource: Record<string, unknown>;
  /** With the resource, recomputes the content hash to compare with the anchored one. */
  salt: Buffer;
}

function recordAad(b: RecordBinding): Buffer {
  return Buffer.from(`custodia/record/v1|${b.recordId}|${b.patientId}|${b.version}`, 'utf8');
}

export function sealRecord(
  dek: KeyObject,
  binding: RecordBinding,
  resource: Record<string, unknown>,
): SealedRecord {
  const salt = newSalt();
  const payload = Buffer.from(JSON.stringify({ s: salt.toString('base64'), r: resource }), 'utf8');
  return { ...seal(dek, payload, recordAad(binding)), contentHash: contentHash(salt, resource) };
}

/** Throws DecryptionFailedError when anything sealed or bound was altered. */
export function openRecord(dek: KeyObject, binding: RecordBinding, sealed: Sealed): OpenedRecord {
  const payload = JSON.parse(open(dek, sealed, recordAad(binding)).toString('utf8')) as {
    s: string;
    r: Record<string, unknown>;
  };
  const salt = Buffer.from(payload.s, 'base64');
  if (salt.length !== SALT_BYTES) throw new TypeError('record payload has a malformed salt');
  return { resource: payload.r, salt };
}

/** Encrypts a small PHI field (e.g. a display name) under the patient's data key. */
export function sealField(dek: KeyObject, label: string, ownerId: string, value: string): Buffer {
  return pack(seal(dek, Buffer.from(value, 'utf8'), fieldAad(label, ownerId)));
}

export function openField(dek: KeyObject, label: string, ownerId: string, packed: Buffer): string {
  return open(dek, unpack(packed), fieldAad(label, ownerId)).toString('utf8');
}

function fieldAad(label: string, ownerId: string): Buffer {
  return Buffer.from(`custodia/field/v1|${label}|${ownerId}`, 'utf8');
}
