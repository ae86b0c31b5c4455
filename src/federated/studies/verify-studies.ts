// verify-ledger's check of the studies kept here: each row is the study the ledger registered
// for its id (owner and terms hash). The API already withholds a study that is not; this says
// that one is there, so a changed catalogue is never silent.
import type { QueryRows } from '../../audit/verify';
import type { Ledger } from '../../ledger';
import { registeredStudy } from './study-registry';
import { registrationProblem, type StudyTerms } from './study-terms';

export interface StudyCheck {
  rows: number;
  /** Rows registered at an upgrade, as the database then held them. */
  legacy: number;
  problems: string[];
}

export async function verifyStudyRows(
  rows: QueryRows,
  ledger: Pick<Ledger, 'evaluate'>,
): Promise<StudyCheck> {
  // The columns under StudyTerms' names: the rows are the terms the hash reads.
  const found = (await rows(
    `SELECT id, title, owner_id AS "ownerId", model, features, label, strategy,
            local_epochs AS "localEpochs", learning_rate AS "learningRate",
            batch_size AS "batchSize", min_nodes AS "minNodes",
            round_deadline_ms AS "roundDeadlineMs", clip_norm AS "clipNorm",
            noise_multiplier AS "noiseMultiplier", created_at AS "createdAt"
     FROM studies ORDER BY created_at, id`,
    [],
  )) as unknown as StudyTerms[];
  const check: StudyCheck = { rows: found.length, legacy: 0, problems: [] };
  for (const study of found) {
    const held = await registeredStudy(ledger, study.id);
    if (held?.legacy) check.legacy++;
    const problem = registrationProblem(study, held);
    if (problem) check.problems.push(`study ${study.id}: ${problem}`);
  }
  return check;
}
