// Envelope encryption of one record version. The associated data binds the ciphertext to
// its record id, patient id and version (format 1), and in format 2 to its resource type,
// category and sensitivity as well: a ciphertext copied into another row, or a row whose
// patient or labels were changed, fails to decrypt instead of yielding data to someone the
// labels would otherwise have kept out.
import { KeyObject } from 'node:crypto';
import { open, seal, Sealed, pack, unpack } from './aead';
import { contentHashV1, contentHashV2, newSalt, SALT_BYTES } from './content-hash';
import { labelsJcs, RecordBinding, RecordLabels } from './record-labels';

export interface SealedRecord extends Sealed {
  contentHash: string;
}

export interface OpenedRecord {
  resource: Record<string, unknown>;
  /** With the resource, recomputes the content hash to compare with the anchored one. */
  salt: Buffer;
}

function aadV1(b: RecordBinding): Buffer {
  return Buffer.from(`custodia/record/v1|${b.recordId}|${b.patientId}|${b.version}`, 'utf8');
}

/** JCS of the labels: category is free-ish text, so no separator could be trusted. */
function aadV2(l: RecordLabels): Buffer {
  return Buffer.from(`custodia/record/v2|${labelsJcs(l)}`, 'utf8');
}

function sealPayload(dek: KeyObject, aad: Buffer, salt: Buffer, resource: unknown): Sealed {
  const payload = Buffer.from(JSON.stringify({ s: salt.toString('base64'), r: resource }), 'utf8');
  return seal(dek, payload, aad);
}

function openPayload(dek: KeyObject, aad: Buffer, sealed: Sealed): OpenedRecord {
  const payload = JSON.parse(open(dek, sealed, aad).toString('utf8')) as {
    s: string;
    r: Record<string, unknown>;
  };
  const salt = Buffer.from(payload.s, 'base64');
  if (salt.length !== SALT_BYTES) throw new TypeError('record payload has a malformed salt');
  return { resource: payload.r, salt };
}

/** Seals a new record version in the current format (2), with its format-2 commitment. */
export function sealRecord(
  dek: KeyObject,
  labels: RecordLabels,
  resource: Record<string, unknown>,
): SealedRecord {
  const salt = newSalt();
  return {
    ...sealPayload(dek, aadV2(labels), salt, resource),
    contentHash: contentHashV2(salt, labels, resource),
  };
}

/** Throws DecryptionFailedError when anything sealed, bound or labelled was altered. */
export function openRecord(dek: KeyObject, labels: RecordLabels, sealed: Sealed): OpenedRecord {
  return openPayload(dek, aadV2(labels), sealed);
}

/**
 * Seals an opened format-1 record under format 2's associated data, keeping its salt so that
 * the format-1 commitment already anchored on the ledger still verifies.
 */
export function resealRecord(dek: KeyObject, labels: RecordLabels, opened: OpenedRecord): Sealed {
  return sealPayload(dek, aadV2(labels), opened.salt, opened.resource);
}

/** Opens a record sealed in format 1, whose labels were not bound; only to re-seal it. */
export function openRecordV1(dek: KeyObject, binding: RecordBinding, sealed: Sealed): OpenedRecord {
  return openPayload(dek, aadV1(binding), sealed);
}

/**
 * Seals in format 1, as records were before labels were bound. Never used for new records:
 * it reproduces old rows for migration drills and tests.
 */
export function sealRecordV1(
  dek: KeyObject,
  binding: RecordBinding,
  resource: Record<string, unknown>,
): SealedRecord {
  const salt = newSalt();
  return {
    ...sealPayload(dek, aadV1(binding), salt, resource),
    contentHash: contentHashV1(salt, resource),
  };
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
