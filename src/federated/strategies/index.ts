export { createStrategy, type StrategyOptions } from './factory';
export { FEDADAM_DEFAULTS, FedAdam, type FedAdamOptions } from './fedadam';
export { FedAvg, type FedAvgOptions } from './fedavg';
export { releaseModel } from './float64-sum';
export { DEFAULT_MU, FedProx, type FedProxOptions } from './fedprox';
export {
  STRATEGY_NAMES,
  type AggregationStrategy,
  type PrivacyReport,
  type RoundAggregator,
  type RoundMetrics,
  type RoundResult,
  type StrategyName,
  type StrategyState,
} from './strategy';
export {
  DEFAULT_MAX_UPDATES,
  DEFAULT_TRIM_FRACTION,
  TrimmedMean,
  trimmedMean,
  type TrimmedMeanOptions,
} from './trimmed-mean';
