// FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2): the round's
// average minus the global model is treated as a pseudo-gradient Δ and applied by Adam on
// the server, whose moments persist from round to round:
//   m ← β₁m + (1 − β₁)Δ,  v ← β₂v + (1 − β₂)Δ²,  x ← x + η·m / (√v + τ)
// Like the paper (and unlike Adam proper) there is no bias correction; τ controls how
// adaptive the step is. Defaults are Flower's: η 0.1, β₁ 0.9, β₂ 0.99, τ 1e-9.
import type { PrivacyConfig } from '../privacy';
import { AveragingStrategy } from './averaging-strategy';
import type { RoundMean } from './round-mean';
import type { StrategyName, StrategyState } from './strategy';

export const FEDADAM_DEFAULTS = { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 } as const;

export interface FedAdamOptions {
  /** Server learning rate η. */
  eta?: number;
  beta1?: number;
  beta2?: number;
  /** Adaptivity τ, added to √v. */
  tau?: number;
  privacy?: PrivacyConfig;
}

export class FedAdam extends AveragingStrategy {
  readonly name: StrategyName = 'FEDADAM';
  readonly eta: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly tau: number;
  // Float32, like the model: they are persisted every round, and float32 moments are
  // what Adam implementations keep.
  private m: Float32Array | null = null;
  private v: Float32Array | null = null;

  constructor(options: FedAdamOptions = {}) {
    super(options.privacy);
    const eta = options.eta ?? FEDADAM_DEFAULTS.eta;
    const beta1 = options.beta1 ?? FEDADAM_DEFAULTS.beta1;
    const beta2 = options.beta2 ?? FEDADAM_DEFAULTS.beta2;
    const tau = options.tau ?? FEDADAM_DEFAULTS.tau;
    if (!(eta > 0) || !Number.isFinite(eta)) throw new RangeError(`eta must be > 0, got ${eta}`);
    for (const [key, beta] of [
      ['beta1', beta1],
      ['beta2', beta2],
    ] as const) {
      if (!(beta >= 0 && beta < 1)) throw new RangeError(`${key} must lie in [0, 1), got ${beta}`);
    }
    if (!(tau > 0) || !Number.isFinite(tau)) throw new RangeError(`tau must be > 0, got ${tau}`);
    this.eta = eta;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.tau = tau;
  }

  protected serverStep(global: Float32Array, mean: RoundMean): Float32Array {
    const average = mean.average();
    const n = global.length;
    if (this.m === null || this.v === null) {
      this.m = new Float32Array(n);
      this.v = new Float32Array(n);
    } else if (this.m.length !== n) {
      throw new RangeError(`FedAdam's moments have ${this.m.length} parameters, the model ${n}`);
    }
    const m = this.m;
    const v = this.v;
    const { eta, beta1, beta2, tau } = this;
    const out = new Float32Array(n);
    average.parts.forEach((part, p) => {
      const offset = average.offsets[p];
      for (let j = 0; j < part.length; j++) {
        const i = offset + j;
        const delta = part[j] - global[i];
        // The step uses the moments as stored (float32), so a restored state continues
        // exactly as an uninterrupted run would.
        const mi = Math.fround(beta1 * m[i] + (1 - beta1) * delta);
        const vi = Math.fround(beta2 * v[i] + (1 - beta2) * delta * delta);
        m[i] = mi;
        v[i] = vi;
        out[i] = global[i] + (eta * mi) / (Math.sqrt(vi) + tau);
      }
    });
    return out;
  }

  protected override moments(): StrategyState['moments'] {
    return this.m && this.v ? { m: this.m.slice(), v: this.v.slice() } : null;
  }

  protected override restoreMoments(moments: StrategyState['moments']): void {
    if (moments === null) {
      this.m = this.v = null;
      return;
    }
    if (moments.m.length !== moments.v.length) {
      throw new RangeError('FedAdam state has first and second moments of different lengths');
    }
    this.m = moments.m.slice();
    this.v = moments.v.slice();
  }
}
