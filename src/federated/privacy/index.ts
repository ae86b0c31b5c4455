export { clipDelta, clipScale, deltaNorm, l2Norm, type Vector } from './clipping';
export { addGaussianNoise, secureRandomBytes, type RandomBytes } from './gaussian';
export {
  aggregateNoiseStd,
  contributionWeight,
  DEFAULT_DELTA,
  validatePrivacyConfig,
  type PrivacyConfig,
} from './private-aggregate';
export {
  computeRdp,
  DEFAULT_ORDERS,
  RdpAccountant,
  rdpToEpsilon,
  type AccountantState,
  type PrivacySpent,
  type RdpConversion,
} from './rdp';
export { studyPrivacy, type StudyPrivacySettings } from './study-privacy';
