// Seeded xoroshiro128+ streams (pure-rand's recommended generator) for reproducible data and
// models: a seed always yields the same numbers on every machine, and nothing reads a clock
// or Math.random.
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/** murmur3's 32-bit finaliser: spreads nearby inputs (seed 1, seed 2) over the whole range. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The stream whose 128 state bits all come from hashing `key`, as the xoroshiro authors
 * advise, rather than pure-rand's 32-bit seeding, whose mostly constant state starts out
 * poorly mixed.
 */
export function streamFromKey(key: number): RandomGenerator {
  const state = [1, 2, 3, 4].map((i) => fmix32(key + Math.imul(i, 0x9e3779b9)) | 0);
  return xoroshiro128plusFromState(state);
}
