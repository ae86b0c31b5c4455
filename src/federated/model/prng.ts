// Seeded randomness for the model code: initial weights and the order examples are visited
// in. A seed always yields the same numbers on every machine; nothing reads Math.random.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { fmix32, streamFromKey } from '../../common/seeded-stream';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

export function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be a whole number from 0 to 4294967295, got ${seed}`);
  }
}

/** The xoroshiro128+ stream for (`seed`, `purpose`). */
export function seededGenerator(seed: number, purpose: number): RandomGenerator {
  checkSeed(seed);
  return streamFromKey(fmix32(fmix32(seed) ^ purpose));
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
