// The keyed index of records' clinical codes: each index term (see records/search) is stored
// only as an HMAC under a key derived from the patient's data key. A database reader learns
// which of one patient's records share a code, never which code, and cannot link codes across
// patients; destroying the data key (erasure) leaves the digests meaningless.
import { createHmac, hkdfSync, KeyObject } from 'node:crypto';

/** Digests are truncated: 128 bits keep collisions out of reach and the index small. */
export const CODE_DIGEST_BYTES = 16;

/** The patient's index key, derived from (never equal to) their data key. */
export function codeIndexKey(dek: KeyObject): Buffer {
  return Buffer.from(
    hkdfSync('sha256', dek.export(), Buffer.alloc(0), 'custodia/code-index/v1', 32),
  );
}

export function codeDigests(indexKey: Buffer, terms: readonly string[]): Buffer[] {
  return terms.map((t) =>
    createHmac('sha256', indexKey).update(t, 'utf8').digest().subarray(0, CODE_DIGEST_BYTES),
  );
}
