// One interface for every aggregation strategy, after Flower: the coordinator begins a
// round on the current global model, folds in each accepted update as it arrives, and
// finishes with the new global model — without knowing which strategy it runs.
//
// Models are flat Float32Array parameter vectors (all layers concatenated). An update is the
// node's full local model after training, as a Flower client returns its parameters; the
// strategy takes the difference from the global model itself where it needs one (clipping,
// FedAdam). So a node never needs to know the strategy, and FedAvg stays exactly Flower's
// example-weighted average of parameters.
import type { AccountantState } from '../privacy';

export const STRATEGY_NAMES = ['FEDAVG', 'FEDPROX', 'FEDADAM', 'TRIMMED_MEAN'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface AggregationStrategy {
  readonly name: StrategyName;
  /** Settings sent to the nodes with each round, e.g. `{ mu }` for FedProx's proximal term. */
  clientConfig(): Record<string, number>;
  /**
   * Starts round `round` (rounds count from 1 and only go forward) on top of `global`,
   * which the caller must leave unchanged until the round finishes.
   */
  begin(global: Float32Array, round: number): RoundAggregator;
  /** What must outlive a round — FedAdam's moments, the privacy spent — for persisting. */
  state(): StrategyState;
  /** Resumes from a persisted state, e.g. after a coordinator restart. */
  restore(state: StrategyState): void;
}

export interface RoundAggregator {
  /**
   * Folds in one accepted update: a full model with as many parameters as the global one,
   * every value finite (the coordinator checks), trained on `numExamples` examples.
   * The caller may reuse `update`'s buffer once this returns.
   */
  fold(update: Float32Array, numExamples: number): void;
  /** Updates folded so far. */
  readonly count: number;
  /** The new global model and what the round did; at most once, after at least one fold. */
  finish(): RoundResult;
}

export interface RoundResult {
  model: Float32Array;
  metrics: RoundMetrics;
}

/**
 * What a round reports. With privacy on, only `model` and the `privacy` figures are covered
 * by the differential privacy guarantee; the counts are exact and should be shown as such.
 */
export interface RoundMetrics {
  strategy: StrategyName;
  round: number;
  updates: number;
  totalExamples: number;
  /** ‖new − previous global model‖₂. */
  stepNorm: number;
  privacy: PrivacyReport | null;
}

export interface PrivacyReport {
  clipNorm: number;
  noiseMultiplier: number;
  denominator: number;
  sampleRate: number;
  /** Standard deviation of the noise on each coordinate of the averaged delta: zC/D. */
  noiseStd: number;
  /** Privacy spent by the run so far, this round included, at `delta`. */
  epsilon: number;
  delta: number;
  /** The RDP order that gave `epsilon`. */
  order: number;
}

export interface StrategyState {
  version: 1;
  strategy: StrategyName;
  /** The last round whose result has been applied to this state; 0 before the first. */
  round: number;
  /** FedAdam's first and second moments, once it has taken a step. */
  moments: { m: Float32Array; v: Float32Array } | null;
  /** The privacy accountant, when differential privacy is on. */
  privacy: AccountantState | null;
}
