// The streaming averages behind FedAvg, FedProx and FedAdam. Each accepted update is folded
// into one running float64 sum as it arrives (float64-sum.ts), so a round holds 2 models'
// worth of memory however many nodes report.
import {
  addGaussianNoise,
  clipScale,
  contributionWeight,
  deltaNorm,
  type PrivacyConfig,
} from '../privacy';
import { Float64Sum } from './float64-sum';
import { checkFinite } from './rounds';

export interface RoundMean {
  fold(update: Float32Array, numExamples: number): void;
  readonly count: number;
  readonly totalExamples: number;
  /**
   * Turns the sum into the round's averaged model, still in float64, in place: call once.
   * Throws if a coordinate is not finite (an update held NaN or ±Infinity, or it overflowed).
   */
  average(): Float64Sum;
  /**
   * The average rounded to float32, in the sum's own memory, in one pass: instead of
   * average() when float32 is all the server step needs. Call once; throws as average().
   */
  averageModel(): Float32Array;
}

export function checkUpdate(update: Float32Array, size: number): void {
  if (!(update instanceof Float32Array)) throw new TypeError('an update must be a Float32Array');
  if (update.length !== size) {
    throw new RangeError(`update has ${update.length} parameters, the model has ${size}`);
  }
}

export function checkExamples(numExamples: number): void {
  if (!Number.isSafeInteger(numExamples) || numExamples <= 0) {
    throw new RangeError(`numExamples must be a whole number > 0, got ${numExamples}`);
  }
}

/** Flower's FedAvg average: Σ nᵢuᵢ / Σ nᵢ. */
export class ExampleWeightedMean implements RoundMean {
  private readonly sum: Float64Sum;
  private folded = 0;
  private examples = 0;

  constructor(private readonly size: number) {
    this.sum = new Float64Sum(size);
  }

  get count(): number {
    return this.folded;
  }

  get totalExamples(): number {
    return this.examples;
  }

  fold(update: Float32Array, numExamples: number): void {
    checkUpdate(update, this.size);
    checkExamples(numExamples);
    this.sum.addScaled(update, numExamples);
    this.folded++;
    this.examples += numExamples;
  }

  average(): Float64Sum {
    this.checkFolded();
    const { parts, offsets } = this.sum;
    if (this.sum.divideBy(this.examples) !== 0) {
      for (let p = 0; p < parts.length; p++) checkFinite(parts[p], 'the round average', offsets[p]);
    }
    return this.sum;
  }

  averageModel(): Float32Array {
    this.checkFolded();
    return this.sum.toFloat32(this.examples, 'the round average');
  }

  private checkFolded(): void {
    if (this.folded === 0) throw new RangeError('no update has been folded into this round');
  }
}

/** g + (Σ wᵢ·clip_C(uᵢ − g) + N(0, (zC)²)) / D; see privacy/private-aggregate.ts for why. */
export class PrivateMean implements RoundMean {
  private readonly sum: Float64Sum;
  private folded = 0;
  private examples = 0;

  constructor(
    private readonly global: Float32Array,
    private readonly privacy: PrivacyConfig,
  ) {
    this.sum = new Float64Sum(global.length);
  }

  get count(): number {
    return this.folded;
  }

  get totalExamples(): number {
    return this.examples;
  }

  fold(update: Float32Array, numExamples: number): void {
    checkUpdate(update, this.global.length);
    checkExamples(numExamples);
    const { clipNorm, examplesCap } = this.privacy;
    // Two passes over the update: the norm must be known before anything is added.
    const scale = clipScale(deltaNorm(update, this.global), clipNorm);
    this.sum.addScaledDifference(
      update,
      this.global,
      scale * contributionWeight(numExamples, examplesCap),
    );
    this.folded++;
    this.examples += numExamples;
  }

  average(): Float64Sum {
    if (this.folded === 0) throw new RangeError('no update has been folded into this round');
    const { clipNorm, noiseMultiplier, denominator, randomBytes } = this.privacy;
    const global = this.global;
    const { parts, offsets } = this.sum;
    for (let p = 0; p < parts.length; p++) {
      addGaussianNoise(parts[p], noiseMultiplier * clipNorm, randomBytes);
      const poison = mapInPlace(parts[p], offsets[p], (v, i) => global[i] + v / denominator);
      if (poison !== 0) checkFinite(parts[p], 'the round average', offsets[p]);
    }
    return this.sum;
  }

  averageModel(): Float32Array {
    return this.average().toFloat32();
  }
}

/**
 * part[j] = f(part[j], offset + j), returning 0 if every result is finite and NaN otherwise
 * (v − v is 0 for finite v and NaN for NaN or ±Infinity): a finiteness check for free.
 */
function mapInPlace(
  part: Float64Array,
  offset: number,
  f: (value: number, coordinate: number) => number,
): number {
  let poison = 0;
  for (let j = 0; j < part.length; j++) {
    const v = f(part[j], offset + j);
    part[j] = v;
    poison += v - v;
  }
  return poison;
}
