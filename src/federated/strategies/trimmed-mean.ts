// Coordinate-wise trimmed mean (Yin et al. 2018), as Flower's FedTrimmedAvg: for every
// parameter, drop the k = ⌊β·N⌋ largest and k smallest of the N nodes' values and average
// the rest, unweighted. It tolerates up to k arbitrarily bad updates per coordinate.
//
// Memory: unlike the averaging strategies this one cannot stream. Which values are trimmed
// depends on all N updates, so the round keeps a copy of each: N × model, bounded by
// `maxUpdates`. (Streaming approximations of per-coordinate quantiles exist, but would make
// the result depend on arrival order; exactness and reproducibility matter more here, and
// studies have few nodes per round.) It does not combine with differential privacy: the
// sensitivity of a trimmed mean is not that of a mean, and the noise calibration in
// privacy/ would not hold.
import { deltaNorm } from '../privacy';
import { checkExamples, checkUpdate } from './round-mean';
import { checkFinite, checkModel, checkNextRound, checkState, StreamingRound } from './rounds';
import type {
  AggregationStrategy,
  RoundAggregator,
  RoundResult,
  StrategyName,
  StrategyState,
} from './strategy';

export const DEFAULT_TRIM_FRACTION = 0.2;
export const DEFAULT_MAX_UPDATES = 256;

export interface TrimmedMeanOptions {
  /** β: the fraction of values cut from each end, in [0, 0.5). */
  trimFraction?: number;
  /** The most updates a round keeps (each costs one model of memory). */
  maxUpdates?: number;
}

class UpdateBuffer {
  readonly updates: Float32Array[] = [];
  private examples = 0;

  constructor(
    private readonly size: number,
    private readonly maxUpdates: number,
  ) {}

  get count(): number {
    return this.updates.length;
  }

  get totalExamples(): number {
    return this.examples;
  }

  fold(update: Float32Array, numExamples: number): void {
    checkUpdate(update, this.size);
    checkExamples(numExamples);
    if (this.updates.length >= this.maxUpdates) {
      throw new RangeError(
        `the trimmed mean keeps every update in memory and is capped at ${this.maxUpdates} per round`,
      );
    }
    // A copy: the caller may reuse its buffer for the next update.
    this.updates.push(update.slice());
    this.examples += numExamples;
  }
}

export class TrimmedMean implements AggregationStrategy {
  readonly name: StrategyName = 'TRIMMED_MEAN';
  readonly trimFraction: number;
  readonly maxUpdates: number;
  private lastRound = 0;

  constructor(options: TrimmedMeanOptions = {}) {
    if ('privacy' in options && (options as { privacy?: unknown }).privacy !== undefined) {
      throw new RangeError('the trimmed mean does not support differential privacy');
    }
    const beta = options.trimFraction ?? DEFAULT_TRIM_FRACTION;
    if (!(beta >= 0 && beta < 0.5)) {
      throw new RangeError(`trimFraction must lie in [0, 0.5), got ${beta}`);
    }
    const max = options.maxUpdates ?? DEFAULT_MAX_UPDATES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxUpdates must be a whole number ≥ 1, got ${max}`);
    }
    this.trimFraction = beta;
    this.maxUpdates = max;
  }

  clientConfig(): Record<string, number> {
    return {};
  }

  begin(global: Float32Array, round: number): RoundAggregator {
    checkModel(global);
    checkNextRound(round, this.lastRound);
    return new StreamingRound(new UpdateBuffer(global.length, this.maxUpdates), (buffer) =>
      this.complete(global, round, buffer),
    );
  }

  state(): StrategyState {
    return { version: 1, strategy: this.name, round: this.lastRound, moments: null, privacy: null };
  }

  restore(state: StrategyState): void {
    checkState(state, this.name);
    if (state.moments !== null || state.privacy !== null) {
      throw new RangeError('the trimmed mean keeps no moments and no privacy accounting');
    }
    this.lastRound = state.round;
  }

  private complete(global: Float32Array, round: number, buffer: UpdateBuffer): RoundResult {
    checkNextRound(round, this.lastRound);
    const model = trimmedMean(buffer.updates, Math.floor(this.trimFraction * buffer.count));
    const stepNorm = deltaNorm(model, global);
    if (!Number.isFinite(stepNorm)) checkFinite(model, 'the new model');
    this.lastRound = round;
    return {
      model,
      metrics: {
        strategy: this.name,
        round,
        updates: buffer.count,
        totalExamples: buffer.totalExamples,
        stepNorm,
        privacy: null,
      },
    };
  }
}

/** For each coordinate, the mean of the values left after cutting the `cut` lowest and highest. */
export function trimmedMean(updates: readonly Float32Array[], cut: number): Float32Array {
  const n = updates.length;
  if (n === 0) throw new RangeError('the trimmed mean of no updates is undefined');
  if (!Number.isSafeInteger(cut) || cut < 0 || 2 * cut >= n) {
    throw new RangeError(`cannot cut ${cut} values from each end of ${n}`);
  }
  const size = updates[0].length;
  const out = new Float32Array(size);
  const column = new Float64Array(n);
  const kept = n - 2 * cut;
  for (let j = 0; j < size; j++) {
    for (let t = 0; t < n; t++) column[t] = updates[t][j];
    sortSmall(column);
    let sum = 0;
    for (let t = cut; t < n - cut; t++) sum += column[t];
    out[j] = sum / kept;
  }
  return out;
}

/** Insertion sort for the few values of one coordinate; the native sort above a few dozen. */
function sortSmall(values: Float64Array): void {
  if (values.length > 32) {
    values.sort();
    return;
  }
  for (let i = 1; i < values.length; i++) {
    const x = values[i];
    let k = i - 1;
    while (k >= 0 && values[k] > x) {
      values[k + 1] = values[k];
      k--;
    }
    values[k + 1] = x;
  }
}
