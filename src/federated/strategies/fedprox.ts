// FedProx (Li et al. 2020): the server does exactly what FedAvg does; the difference is on
// the nodes, which add (μ/2)·‖w − w_global‖² to their local loss. The coordinator only has
// to send μ with each round.
import type { PrivacyConfig } from '../privacy';
import { FedAvg } from './fedavg';
import type { StrategyName } from './strategy';

export const DEFAULT_MU = 0.01;

export interface FedProxOptions {
  /** Weight of the proximal term in the nodes' local loss. */
  mu?: number;
  privacy?: PrivacyConfig;
}

export class FedProx extends FedAvg {
  override readonly name: StrategyName = 'FEDPROX';
  readonly mu: number;

  constructor(options: FedProxOptions = {}) {
    super({ privacy: options.privacy });
    const mu = options.mu ?? DEFAULT_MU;
    if (!(mu >= 0) || !Number.isFinite(mu)) {
      throw new RangeError(`FedProx's mu must be a finite number ≥ 0, got ${mu}`);
    }
    this.mu = mu;
  }

  override clientConfig(): Record<string, number> {
    return { mu: this.mu };
  }
}
