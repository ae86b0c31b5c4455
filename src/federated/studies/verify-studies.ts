// verify-ledger's check of the studies kept here: each row is the study the ledger registered
// for its id (owner and terms hash). The API already withholds a study that is not; this says
// that one is there, so a changed catalogue is never silent.
import type { StudyRegistration } from '@custodia/chaincode';
import type { QueryRows } from '../../audit/verify';
import { NotFoundError } from '../../common/errors';
import { registrationProblem, type StudyTerms } from './study-terms';

export interface StudyCheck {
  rows: number;
  /** Rows registered at an upgrade, as the database then held them. */
  legacy: number;
  problems: string[];
}

interface StudyReader {
  evaluate<T>(contract: 'training', fn: string, args: string[]): Promise<T>;
}

export async function verifyStudyRows(rows: QueryRows, ledger: StudyReader): Promise<StudyCheck> {
  const found = (await rows(
    `SELECT id, title, owner_id, model, features, label, strategy, local_epochs, learning_rate,
            batch_size, min_nodes, round_deadline_ms, clip_norm, noise_multiplier, created_at
     FROM studies ORDER BY created_at, id`,
    [],
  )) as unknown as StudyDbRow[];
  const check: StudyCheck = { rows: found.length, legacy: 0, problems: [] };
  for (const r of found) {
    const held = await ledger
      .evaluate<StudyRegistration>('training', 'GetStudy', [r.id])
      .catch((e: unknown) => {
        if (e instanceof NotFoundError) return null;
        throw e;
      });
    if (held?.legacy) check.legacy++;
    const problem = registrationProblem(toTerms(r), held);
    if (problem) check.problems.push(`study ${r.id}: ${problem}`);
  }
  return check;
}

interface StudyDbRow {
  id: string;
  title: string;
  owner_id: string;
  model: string;
  features: string[];
  label: string;
  strategy: string;
  local_epochs: number;
  learning_rate: number;
  batch_size: number;
  min_nodes: number;
  round_deadline_ms: number;
  clip_norm: number | null;
  noise_multiplier: number | null;
  created_at: Date;
}

function toTerms(r: StudyDbRow): StudyTerms {
  return {
    id: r.id,
    title: r.title,
    ownerId: r.owner_id,
    model: r.model,
    features: r.features,
    label: r.label,
    strategy: r.strategy,
    localEpochs: r.local_epochs,
    learningRate: r.learning_rate,
    batchSize: r.batch_size,
    minNodes: r.min_nodes,
    roundDeadlineMs: r.round_deadline_ms,
    clipNorm: r.clip_norm,
    noiseMultiplier: r.noise_multiplier,
    createdAt: r.created_at,
  };
}
