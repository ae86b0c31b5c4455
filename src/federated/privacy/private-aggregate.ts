// How a round's aggregate is made differentially private, and how much noise that takes.
//
// With privacy on, the new global model is
//
//     g + ( Σᵢ wᵢ · clip_C(uᵢ − g) + N(0, (zC)² I) ) / D
//
// g the current global model, uᵢ the accepted updates, clip_C the scaling of a delta to L2
// norm ≤ C (over all layers at once), wᵢ ∈ (0, 1] a per-node weight — 1, or min(nᵢ/cap, 1)
// when `examplesCap` is set — z the noise multiplier and D a fixed, public denominator.
//
// Why this shape, and not FedAvg's Σ nᵢuᵢ / Σ nᵢ with noise zC/m:
// * Adding or removing one node's update changes the noised sum by wᵢ·clip_C(Δᵢ), whose
//   norm is at most C whatever the others sent: the sum has L2 sensitivity C, and Gaussian
//   noise of standard deviation zC on it is exactly the sampled Gaussian mechanism with
//   noise multiplier z that the RDP accountant analyses.
// * Dividing by a constant is post-processing: on the averaged delta the noise has standard
//   deviation zC/D per coordinate (`aggregateNoiseStd`).
// * D must not depend on who reported. A sample-weighted mean divides by Σ nᵢ, which is
//   itself data: one node reporting a huge nᵢ owns the whole average, so its sensitivity
//   is about C, not C/m, and noise zC/m would be m times too small. Dividing by the actual
//   count m has the same flaw in milder form. With D fixed (the expected number of
//   contributors, or their expected total capped weight) a round where fewer nodes report
//   than expected is shrunk toward g, and one where more report is stretched away from it
//   — the known cost of the fixed-denominator estimator f̃_f of McMahan et al. 2018,
//   "Learning Differentially Private Recurrent Language Models".
//
// The guarantee is at the level of nodes (a hospital's whole update) under add/remove
// adjacency, and assumes each node takes part in a round independently with probability
// `sampleRate`; with every node in every round, say sampleRate = 1 (no amplification).
import type { RandomBytes } from './gaussian';

export interface PrivacyConfig {
  /** C: each update's delta from the global model is scaled to at most this L2 norm. */
  clipNorm: number;
  /** z: noise standard deviation on the sum, in units of C. */
  noiseMultiplier: number;
  /** D: the fixed divisor of the noised sum; see the file comment. Must not be data. */
  denominator: number;
  /** q: the probability with which each node is asked to take part in a round. */
  sampleRate: number;
  /** The δ at which ε is reported; 1e-5 unless the study says otherwise. */
  delta?: number;
  /** When set, node i weighs min(nᵢ / examplesCap, 1) instead of 1. */
  examplesCap?: number;
  /** RDP orders of the accountant; DEFAULT_ORDERS unless given. */
  orders?: readonly number[];
  /** Source of randomness for the noise; the OS CSPRNG unless a test injects one. */
  randomBytes?: RandomBytes;
}

export const DEFAULT_DELTA = 1e-5;

/** Per-coordinate standard deviation of the noise on the private mean: zC/D. */
export function aggregateNoiseStd(
  clipNorm: number,
  noiseMultiplier: number,
  denominator: number,
): number {
  return (noiseMultiplier * clipNorm) / denominator;
}

/** wᵢ: 1, or the node's examples over the cap, at most 1 — never more, or sensitivity grows. */
export function contributionWeight(numExamples: number, examplesCap?: number): number {
  return examplesCap === undefined ? 1 : Math.min(numExamples / examplesCap, 1);
}

/** Rejects a configuration under which the stated guarantee would not hold. */
export function validatePrivacyConfig(config: PrivacyConfig): void {
  const positive = (value: number | undefined, name: string) => {
    if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
      throw new RangeError(`privacy.${name} must be a finite number > 0, got ${value}`);
    }
  };
  positive(config.clipNorm, 'clipNorm');
  positive(config.noiseMultiplier, 'noiseMultiplier');
  positive(config.denominator, 'denominator');
  if (!(config.sampleRate > 0 && config.sampleRate <= 1)) {
    throw new RangeError(`privacy.sampleRate must lie in (0, 1], got ${config.sampleRate}`);
  }
  const delta = config.delta ?? DEFAULT_DELTA;
  if (!(delta > 0 && delta < 1)) {
    throw new RangeError(`privacy.delta must lie in (0, 1), got ${delta}`);
  }
  if (config.examplesCap !== undefined) positive(config.examplesCap, 'examplesCap');
}
