// Seeded sampling for the synthetic cohort: independent PRNG streams derived from one seed,
// and the normal, Gamma and Dirichlet draws the generator needs. Nothing here reads a clock
// or Math.random, so a seed always yields the same numbers on every machine.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { fmix32, streamFromKey } from '../../common/seeded-stream';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/**
 * A draw-by-draw sampler over one xoroshiro128+ stream (pure-rand's recommended generator).
 * It mutates its own generator, so give each independent purpose its own stream.
 */
export class Sampler {
  /** The second Box–Muller value, kept for the next normal draw. */
  private spare: number | undefined;

  constructor(private readonly rng: RandomGenerator) {}

  /**
   * The stream for (`seed`, `purpose`, `index`): e.g. one per patient, so that patient i is
   * the same whatever the cohort size, and one for the partition, so that the features do
   * not depend on the number of sites or on α.
   */
  static stream(seed: number, purpose: number, index = 0): Sampler {
    return new Sampler(streamFromKey(fmix32(fmix32(fmix32(seed) ^ purpose) + index)));
  }

  /** Uniform on [0, 1) with 53 random bits. */
  uniform(): number {
    return uniformFloat64(this.rng);
  }

  /** Uniform integer in [min, max], without modulo bias. */
  int(min: number, max: number): number {
    return uniformInt(this.rng, min, max);
  }

  /** Standard normal by Box–Muller: always two uniforms per pair, no rejection loop. */
  normal(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log(0) would be -Infinity
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /**
   * log of a Gamma(shape, 1) draw, by Marsaglia & Tsang (2000). For shape < 1 it uses their
   * boost Gamma(a) = Gamma(a + 1) · U^(1/a); the log keeps tiny shapes (α = 0.01) from
   * underflowing to 0, which would leave a Dirichlet draw with nothing to normalise.
   */
  logGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RangeError(`Gamma shape must be a positive number, got ${shape}`);
    }
    if (shape < 1) {
      const boost = Math.log(1 - this.uniform()) / shape;
      return this.logGamma(shape + 1) + boost;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const t = 1 + c * x;
      if (t <= 0) continue;
      const v = t * t * t;
      const u = 1 - this.uniform();
      // The squeeze accepts ~98% of draws without a logarithm.
      if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
        return Math.log(d * v);
      }
    }
  }

  gamma(shape: number): number {
    return Math.exp(this.logGamma(shape));
  }

  /** A draw from Dirichlet(α·1_k): k Gamma(α) draws, normalised (in log space). */
  dirichlet(alpha: number, k: number): number[] {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer`);
    const logs = Array.from({ length: k }, () => this.logGamma(alpha));
    const max = Math.max(...logs);
    const weights = logs.map((l) => Math.exp(l - max));
    const total = weights.reduce((a, b) => a + b, 0);
    return weights.map((w) => w / total);
  }

  /** Fisher–Yates shuffle into a new array. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}
