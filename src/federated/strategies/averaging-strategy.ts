// What FedAvg, FedProx and FedAdam share: a streaming average of the round's updates —
// example-weighted, or private when a noise multiplier is set — followed by a server step
// that each strategy defines, and the privacy accounting of every released model.
import {
  aggregateNoiseStd,
  DEFAULT_DELTA,
  DEFAULT_ORDERS,
  deltaNorm,
  type PrivacyConfig,
  RdpAccountant,
  validatePrivacyConfig,
} from '../privacy';
import { ExampleWeightedMean, PrivateMean, type RoundMean } from './round-mean';
import { checkFinite, checkModel, checkNextRound, checkState, StreamingRound } from './rounds';
import type {
  AggregationStrategy,
  PrivacyReport,
  RoundAggregator,
  RoundResult,
  StrategyName,
  StrategyState,
} from './strategy';

export abstract class AveragingStrategy implements AggregationStrategy {
  abstract readonly name: StrategyName;
  private lastRound = 0;
  private accountant: RdpAccountant | null;

  constructor(private readonly privacy?: PrivacyConfig) {
    if (privacy) validatePrivacyConfig(privacy);
    this.accountant = privacy ? new RdpAccountant(privacy.orders ?? DEFAULT_ORDERS) : null;
  }

  clientConfig(): Record<string, number> {
    return {};
  }

  begin(global: Float32Array, round: number): RoundAggregator {
    checkModel(global);
    checkNextRound(round, this.lastRound);
    const mean: RoundMean = this.privacy
      ? new PrivateMean(global, this.privacy)
      : new ExampleWeightedMean(global.length);
    return new StreamingRound(mean, (m) => this.complete(global, round, m));
  }

  /** The new global model from the current one and the round's average. */
  protected abstract serverStep(global: Float32Array, mean: RoundMean): Float32Array;

  /** Strategy state besides the round and the accountant (FedAdam's moments). */
  protected moments(): StrategyState['moments'] {
    return null;
  }

  protected restoreMoments(moments: StrategyState['moments']): void {
    if (moments !== null) throw new RangeError(`${this.name} keeps no moments`);
  }

  state(): StrategyState {
    return {
      version: 1,
      strategy: this.name,
      round: this.lastRound,
      moments: this.moments(),
      privacy: this.accountant?.state() ?? null,
    };
  }

  restore(state: StrategyState): void {
    checkState(state, this.name);
    let accountant: RdpAccountant | null = null;
    if (this.privacy) {
      if (state.privacy === null && state.round > 0) {
        throw new RangeError('state has rounds but no privacy accounting, and privacy is on');
      }
      accountant = state.privacy
        ? RdpAccountant.restore(state.privacy)
        : new RdpAccountant(this.privacy.orders ?? DEFAULT_ORDERS);
      const wanted = this.privacy.orders ?? DEFAULT_ORDERS;
      if (accountant.orders.join() !== wanted.join()) {
        throw new RangeError('state was accounted at other RDP orders than configured');
      }
    } else if (state.privacy !== null) {
      throw new RangeError('state holds privacy accounting, but privacy is off');
    }
    this.restoreMoments(state.moments);
    this.accountant = accountant;
    this.lastRound = state.round;
  }

  private complete(global: Float32Array, round: number, mean: RoundMean): RoundResult {
    // Another aggregator may have finished a later round since this one began.
    checkNextRound(round, this.lastRound);
    // average() and averageModel() refuse a non-finite average before the server step
    // changes anything, so a bad round leaves FedAdam's moments untouched.
    const model = this.serverStep(global, mean);
    const stepNorm = deltaNorm(model, global);
    // A NaN or ±Infinity anywhere in the model makes its distance from the global one so.
    if (!Number.isFinite(stepNorm)) checkFinite(model, 'the new model');
    const privacy = this.account();
    this.lastRound = round;
    return {
      model,
      metrics: {
        strategy: this.name,
        round,
        updates: mean.count,
        totalExamples: mean.totalExamples,
        stepNorm,
        privacy,
      },
    };
  }

  /** One more release of the sampled Gaussian mechanism, and the ε spent so far. */
  private account(): PrivacyReport | null {
    if (!this.privacy || !this.accountant) return null;
    const { clipNorm, noiseMultiplier, denominator, sampleRate } = this.privacy;
    const delta = this.privacy.delta ?? DEFAULT_DELTA;
    this.accountant.step(noiseMultiplier, sampleRate);
    const spent = this.accountant.epsilon(delta);
    return {
      clipNorm,
      noiseMultiplier,
      denominator,
      sampleRate,
      noiseStd: aggregateNoiseStd(clipNorm, noiseMultiplier, denominator),
      epsilon: spent.epsilon,
      delta,
      order: spent.order,
    };
  }
}
