// FedAvg (McMahan et al. 2017) as Flower computes it: the new global model is the average of
// the nodes' models weighted by their number of examples — or, with privacy on, the private
// mean of their clipped deltas (privacy/private-aggregate.ts).
import type { PrivacyConfig } from '../privacy';
import { AveragingStrategy } from './averaging-strategy';
import type { RoundMean } from './round-mean';
import type { StrategyName } from './strategy';

export interface FedAvgOptions {
  privacy?: PrivacyConfig;
}

export class FedAvg extends AveragingStrategy {
  readonly name: StrategyName = 'FEDAVG';

  constructor(options: FedAvgOptions = {}) {
    super(options.privacy);
  }

  protected serverStep(_global: Float32Array, mean: RoundMean): Float32Array {
    // In the accumulator's own memory: the round's peak stays at 2 models.
    return mean.averageModel();
  }
}
