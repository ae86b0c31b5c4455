// Builds the strategy a study names, with its options; the only place that knows them all.
import { FedAdam, type FedAdamOptions } from './fedadam';
import { FedAvg, type FedAvgOptions } from './fedavg';
import { FedProx, type FedProxOptions } from './fedprox';
import type { AggregationStrategy, StrategyName } from './strategy';
import { TrimmedMean, type TrimmedMeanOptions } from './trimmed-mean';

export interface StrategyOptions {
  FEDAVG: FedAvgOptions;
  FEDPROX: FedProxOptions;
  FEDADAM: FedAdamOptions;
  TRIMMED_MEAN: TrimmedMeanOptions;
}

export function createStrategy<N extends StrategyName>(
  name: N,
  options: StrategyOptions[N] = {},
): AggregationStrategy {
  switch (name) {
    case 'FEDAVG':
      return new FedAvg(options as FedAvgOptions);
    case 'FEDPROX':
      return new FedProx(options as FedProxOptions);
    case 'FEDADAM':
      return new FedAdam(options as FedAdamOptions);
    case 'TRIMMED_MEAN':
      return new TrimmedMean(options as TrimmedMeanOptions);
    default:
      throw new RangeError(`unknown aggregation strategy ${String(name)}`);
  }
}
