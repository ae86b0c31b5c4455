// Gaussian noise for differential privacy, from the operating system's cryptographically
// secure generator: an attacker who could predict the noise could subtract it. Box–Muller
// on 53-bit uniforms, so every double in (0, 1] can come up and no uniform is ever 0.
//
// Known limit: floating-point samplers leak a little through the low bits of their output
// (Mironov 2012; Jin et al. 2022). The released model is rounded to float32 after the
// noise is added, which blurs those bits; a discrete Gaussian sampler would remove the
// issue entirely and can replace this function without touching its callers.
import { randomFillSync } from 'node:crypto';
import type { Vector } from './clipping';

/** Fills a buffer with random bytes. The default is the OS CSPRNG; tests inject their own. */
export type RandomBytes = (buffer: Uint8Array) => void;

export const secureRandomBytes: RandomBytes = (buffer) => {
  randomFillSync(buffer);
};

// 8 KiB of pairs of uniforms per refill: small enough to stay in cache, large enough that
// the call into OpenSSL is amortised.
const PAIRS_PER_CHUNK = 512;
const TWO_POW_MINUS_53 = 2 ** -53;

/** Adds independent N(0, std²) noise to every element of `target`, in place. */
export function addGaussianNoise(
  target: Vector,
  std: number,
  randomBytes: RandomBytes = secureRandomBytes,
): void {
  if (!(std >= 0) || !Number.isFinite(std)) {
    throw new RangeError(`noise standard deviation must be a finite number ≥ 0, got ${std}`);
  }
  if (std === 0) return;
  // Two uniforms per pair of normals, 8 bytes (two 32-bit words) per uniform.
  const words = new Uint32Array(PAIRS_PER_CHUNK * 4);
  const bytes = new Uint8Array(words.buffer);
  let available = 0; // pairs left in `words`
  for (let i = 0; i < target.length; i += 2) {
    if (available === 0) {
      randomBytes(bytes);
      available = PAIRS_PER_CHUNK;
    }
    const w = (PAIRS_PER_CHUNK - available) * 4;
    available--;
    // 53 random bits → (k + 1)/2⁵³ ∈ (0, 1], so the logarithm is always finite.
    const u1 = ((words[w] >>> 11) * 4294967296 + words[w + 1] + 1) * TWO_POW_MINUS_53;
    const u2 = ((words[w + 2] >>> 11) * 4294967296 + words[w + 3]) * TWO_POW_MINUS_53;
    const r = std * Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    target[i] = target[i] + r * Math.cos(theta);
    if (i + 1 < target.length) target[i + 1] = target[i + 1] + r * Math.sin(theta);
  }
}
