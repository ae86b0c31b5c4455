// The record commitments anchored on the ledger (ARCHITECTURE section 6):
//   format 1: sha256("custodia/record/v1" ‖ salt ‖ JCS(resource))
//   format 2: sha256("custodia/record/v2" ‖ salt ‖ JCS({labels, resource}))
// The random per-record salt lives inside the ciphertext, so a hash on the ledger cannot be
// dictionary-attacked from guessable FHIR content. Format 2 commits to the labels too, so the
// ledger vouches for a record's type, category and sensitivity, not only its content.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import { randomBytesPooled } from '../../common/random';
import { labelsOnly, RecordFormat, RecordLabels } from './record-labels';

const DOMAIN_V1 = Buffer.from('custodia/record/v1', 'utf8');
const DOMAIN_V2 = Buffer.from('custodia/record/v2', 'utf8');
export const SALT_BYTES = 32;

export function newSalt(): Buffer {
  return randomBytesPooled(SALT_BYTES);
}

/** RFC 8785 JSON Canonicalization Scheme. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value cannot be canonicalised as JSON');
  return text;
}

/** Format 1: the resource alone. Still computed for records anchored before format 2. */
export function contentHashV1(salt: Buffer, resource: unknown): string {
  return digest(DOMAIN_V1, salt, resource);
}

/** Format 2: the labels and the resource. */
export function contentHashV2(salt: Buffer, labels: RecordLabels, resource: unknown): string {
  return digest(DOMAIN_V2, salt, { labels: labelsOnly(labels), resource });
}

/** The commitment of the given format. */
export function contentHash(
  format: RecordFormat,
  salt: Buffer,
  labels: RecordLabels,
  resource: unknown,
): string {
  return format === 1 ? contentHashV1(salt, resource) : contentHashV2(salt, labels, resource);
}

function digest(domain: Buffer, salt: Buffer, value: unknown): string {
  if (salt.length !== SALT_BYTES) throw new TypeError(`salt must be ${SALT_BYTES} bytes`);
  return createHash('sha256')
    .update(domain)
    .update(salt)
    .update(canonicalJson(value), 'utf8')
    .digest('hex');
}
