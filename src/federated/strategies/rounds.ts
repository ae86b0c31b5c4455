// Checks every strategy makes at the edges of a round.
import type { RoundAggregator, RoundResult, StrategyName, StrategyState } from './strategy';

export function checkModel(global: Float32Array): void {
  if (!(global instanceof Float32Array) || global.length === 0) {
    throw new TypeError('the global model must be a non-empty Float32Array');
  }
}

/** Rounds only go forward: a round at or before the last applied one would apply twice. */
export function checkNextRound(round: number, lastRound: number): void {
  if (!Number.isSafeInteger(round) || round < 1) {
    throw new RangeError(`round must be a whole number ≥ 1, got ${round}`);
  }
  if (round <= lastRound) {
    throw new RangeError(`round ${round} is not after round ${lastRound}, already applied`);
  }
}

export function checkState(state: StrategyState, name: StrategyName): void {
  if (state.version !== 1) throw new RangeError(`unknown strategy state version ${state.version}`);
  if (state.strategy !== name) {
    throw new RangeError(`state belongs to ${state.strategy}, not ${name}`);
  }
  if (!Number.isSafeInteger(state.round) || state.round < 0) {
    throw new RangeError(`state.round must be a whole number ≥ 0, got ${state.round}`);
  }
}

/** An aggregate is published; it must be a model, not NaN or ±Infinity. */
export function checkFinite(values: Float32Array | Float64Array, what: string, offset = 0): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new RangeError(
        `${what} is not finite at parameter ${offset + i}: an update held NaN or ±Infinity, or the sum overflowed`,
      );
    }
  }
}

/** A round's fold/finish life cycle around a strategy-specific accumulator. */
export class StreamingRound<
  T extends { fold(u: Float32Array, n: number): void; count: number },
> implements RoundAggregator {
  private finished = false;

  constructor(
    private readonly accumulator: T,
    private readonly complete: (accumulator: T) => RoundResult,
  ) {}

  get count(): number {
    return this.accumulator.count;
  }

  fold(update: Float32Array, numExamples: number): void {
    if (this.finished) throw new RangeError('this round has finished; begin the next one');
    this.accumulator.fold(update, numExamples);
  }

  finish(): RoundResult {
    if (this.finished) throw new RangeError('this round has already finished');
    if (this.accumulator.count === 0) {
      throw new RangeError('a round needs at least one update before it can finish');
    }
    this.finished = true;
    return this.complete(this.accumulator);
  }
}
