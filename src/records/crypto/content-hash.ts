// The record commitment of ARCHITECTURE section 6:
//   sha256("custodia/record/v1" ‖ salt ‖ JCS(resource))
// The random per-record salt lives inside the ciphertext, so the hash on the ledger cannot
// be dictionary-attacked from guessable FHIR content.
import canonicalize from 'canonicalize';
import { createHash, randomBytes } from 'node:crypto';

const DOMAIN = Buffer.from('custodia/record/v1', 'utf8');
export const SALT_BYTES = 32;

export function newSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

/** RFC 8785 JSON Canonicalization Scheme. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value cannot be canonicalised as JSON');
  return text;
}

export function contentHash(salt: Buffer, resource: unknown): string {
  if (salt.length !== SALT_BYTES) throw new TypeError(`salt must be ${SALT_BYTES} bytes`);
  return createHash('sha256')
    .update(DOMAIN)
    .update(salt)
    .update(canonicalJson(resource), 'utf8')
    .digest('hex');
}
