// A study's differential-privacy settings as the aggregation strategy takes them. Every node
// counts once towards the denominator, which is the study's minimum of nodes per round (the
// fixed denominator the guarantee assumes); every node is sampled each round.
import type { PrivacyConfig } from './private-aggregate';

export interface StudyPrivacySettings {
  clipNorm: number | null;
  noiseMultiplier: number | null;
  minNodes: number;
}

/** The privacy configuration of a study, or undefined when it trains without DP. */
export function studyPrivacy(study: StudyPrivacySettings): PrivacyConfig | undefined {
  if (!study.noiseMultiplier) return undefined;
  // Never train without the promised guarantee: a noise multiplier needs its clipping norm.
  if (!study.clipNorm) throw new RangeError('a study with a noise multiplier needs a clipNorm');
  return {
    clipNorm: study.clipNorm,
    noiseMultiplier: study.noiseMultiplier,
    denominator: study.minNodes,
    sampleRate: 1,
  };
}
