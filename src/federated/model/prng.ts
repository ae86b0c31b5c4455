// Seeded randomness for the model code: initial weights and the order examples are visited
// in. A seed always yields the same numbers on every machine; nothing reads Math.random.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/** murmur3's 32-bit finaliser: spreads nearby seeds (1, 2, …) over the whole range. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be a whole number from 0 to 4294967295, got ${seed}`);
  }
}

/**
 * The xoroshiro128+ stream for (`seed`, `purpose`), with all 128 state bits from the hash:
 * pure-rand's own 32-bit seeding starts from a mostly constant, poorly mixed state.
 */
export function seededGenerator(seed: number, purpose: number): RandomGenerator {
  checkSeed(seed);
  const key = fmix32(fmix32(seed) ^ purpose);
  const state = [1, 2, 3, 4].map((i) => fmix32(key + Math.imul(i, 0x9e3779b9)) | 0);
  return xoroshiro128plusFromState(state);
}

/** Uniform on [0, 1) with 53 random bits. */
export function uniform(rng: RandomGenerator): number {
  return uniformFloat64(rng);
}

/** A uniformly random permutation of 0 … n − 1 (Fisher–Yates). */
export function permutation(n: number, rng: RandomGenerator): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
