// AES-256-GCM with associated data: the one primitive behind record, field and key wrapping.
import { createCipheriv, createDecipheriv, KeyObject } from 'node:crypto';
import { randomBytesPooled } from '../../common/random';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface Sealed {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Raised when a ciphertext, its IV, its tag or its associated data was altered. */
export class DecryptionFailedError extends Error {
  constructor() {
    super('ciphertext failed authentication');
    this.name = 'DecryptionFailedError';
  }
}

export function seal(key: KeyObject | Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  const iv = randomBytesPooled(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

export function open(key: KeyObject | Buffer, sealed: Sealed, aad: Buffer): Buffer {
  if (sealed.iv.length !== IV_BYTES || sealed.tag.length !== TAG_BYTES) {
    throw new DecryptionFailedError();
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    throw new DecryptionFailedError();
  }
}

/** iv ‖ tag ‖ ciphertext, for values stored in one column (wrapped keys, fields). */
export function pack(s: Sealed): Buffer {
  return Buffer.concat([s.iv, s.tag, s.ciphertext]);
}

export function unpack(b: Buffer): Sealed {
  return {
    iv: b.subarray(0, IV_BYTES),
    tag: b.subarray(IV_BYTES, IV_BYTES + TAG_BYTES),
    ciphertext: b.subarray(IV_BYTES + TAG_BYTES),
  };
}
