// Random bytes for the many small values made per request or per round: AES-GCM IVs, salts.
// crypto.randomBytes costs about 3.7 µs a call however few bytes it returns (a job through
// the binding each time); cut from a pool refilled 4 KiB at a time, as node:crypto's own
// randomUUID does, a 12-byte IV costs about 0.2 µs. Every byte of the pool is handed out
// once, and copied out of it, so a caller keeping its bytes never sees them change.
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
/** Above this, a request is served directly: pooling saves nothing on large draws. */
const MAX_POOLED = 256;

const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;

/** `size` cryptographically secure random bytes, in a buffer of their own. */
export function randomBytesPooled(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('size must be a byte count');
  const out = Buffer.allocUnsafe(size);
  if (size > MAX_POOLED) return randomFillSync(out);
  if (used + size > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  pool.copy(out, 0, used, used + size);
  // The bytes handed out are not left in the pool.
  pool.fill(0, used, used + size);
  used += size;
  return out;
}
