// A study's terms as one hash: what the ledger registers when the study is created, and what
// every read of the study's row is compared with. The hash covers every column a patient's
// consent to the study, or its running, depends on (owner, features, label, model, strategy,
// privacy, schedule, title), so a row changed in the database no longer matches it.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';

/** The columns of a study row (StudyEntity), as the hash reads them. */
export interface StudyTerms {
  id: string;
  title: string;
  ownerId: string;
  model: string;
  features: readonly string[];
  label: string;
  strategy: string;
  localEpochs: number;
  learningRate: number;
  batchSize: number;
  minNodes: number;
  roundDeadlineMs: number;
  clipNorm: number | null;
  noiseMultiplier: number | null;
  createdAt: Date;
}

/** sha256("custodia/study/v1\n" ‖ JCS(terms)), as lowercase hex. */
export function studyTermsHash(s: StudyTerms): string {
  const terms = {
    id: s.id,
    title: s.title,
    ownerId: s.ownerId,
    model: s.model,
    // In the order the study lists them: the model's inputs are in that order.
    features: [...s.features],
    label: s.label,
    strategy: s.strategy,
    localEpochs: s.localEpochs,
    learningRate: s.learningRate,
    batchSize: s.batchSize,
    minNodes: s.minNodes,
    roundDeadlineMs: s.roundDeadlineMs,
    clipNorm: s.clipNorm ?? null,
    noiseMultiplier: s.noiseMultiplier ?? null,
    createdAt: s.createdAt.toISOString(),
  };
  return createHash('sha256')
    .update('custodia/study/v1\n')
    .update(canonicalize(terms)!)
    .digest('hex');
}

/** Why a study row is not the study the ledger registered, or null when it is. */
export function registrationProblem(
  row: StudyTerms,
  held: { ownerId: string; termsHash: string } | null,
): string | null {
  if (!held) return 'the ledger never registered it (forged, or its registration failed)';
  if (held.ownerId !== row.ownerId) return 'its owner differs from the one the ledger registered';
  if (held.termsHash !== studyTermsHash(row)) {
    return 'its terms differ from those the ledger registered';
  }
  return null;
}
