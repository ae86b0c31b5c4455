// What `verify-ledger` checks of AI decisions: every deployed model and every decision stored
// in the database against the ledger's entry for it (ids, hashes, commitment, output), and
// each deployed model's stored weights against its hash. The inputs are sealed: recomputing
// a decision from them is verifyDecision's work, with the patient's key.
import type { DecisionRecord, ModelDeployment } from '@custodia/chaincode';
import { createHash } from 'node:crypto';
import type { QueryRows } from '../audit';
import { NotFoundError } from '../common/errors';
import type { Ledger } from '../ledger';

export interface DecisionsCheck {
  deployments: number;
  decisions: number;
  problems: string[];
}

const PAGE = 500;

export async function verifyDecisionsAgainstLedger(
  query: QueryRows,
  ledger: Pick<Ledger, 'evaluate'>,
): Promise<DecisionsCheck> {
  const check: DecisionsCheck = { deployments: 0, decisions: 0, problems: [] };
  const entry = async <T>(fn: string, id: string): Promise<T | null> => {
    try {
      return await ledger.evaluate<T>('decisions', fn, [id]);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  };
  const compare = (what: string, pairs: [string, unknown, unknown][]) => {
    for (const [field, stored, onLedger] of pairs) {
      if (stored !== onLedger)
        check.problems.push(`${what}: its ${field} differs from the ledger's`);
    }
  };

  for (const row of await query(
    `SELECT id, run_id, model_hash, weights, ledger_tx_id FROM deployed_models ORDER BY id`,
    [],
  )) {
    check.deployments++;
    const id = row.id as string;
    const hash = (row.model_hash as string).trim();
    const what = `deployed model ${id}`;
    if (
      createHash('sha256')
        .update(row.weights as Buffer)
        .digest('hex') !== hash
    ) {
      check.problems.push(`${what}: its stored weights do not match its model hash`);
    }
    const d = await entry<ModelDeployment>('GetDeployment', id);
    if (!d) check.problems.push(`${what} is not on the ledger`);
    else {
      compare(what, [
        ['run', row.run_id, d.runId],
        ['model hash', hash, d.modelHash],
        ['transaction id', row.ledger_tx_id, d.txId],
      ]);
    }
  }

  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows = await query(
      `SELECT id, patient_id, model_id, model_hash, actor_id, grant_id, input_commitment,
              probability, ledger_tx_id
       FROM ai_decisions WHERE id > $1 ORDER BY id LIMIT $2`,
      [after, PAGE],
    );
    for (const row of rows) {
      check.decisions++;
      const id = row.id as string;
      const what = `AI decision ${id}`;
      const d = await entry<DecisionRecord>('GetDecision', id);
      if (!d) check.problems.push(`${what} is not on the ledger`);
      else {
        compare(what, [
          ['patient', row.patient_id, d.patientId],
          ['deployed model', row.model_id, d.deploymentId],
          ['model hash', (row.model_hash as string).trim(), d.modelHash],
          ['actor', row.actor_id, d.actorId],
          ['grant', row.grant_id, d.grantId],
          ['input commitment', (row.input_commitment as string).trim(), d.inputCommitment],
          ['probability', row.probability, d.output],
          ['transaction id', row.ledger_tx_id, d.txId],
        ]);
      }
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1].id as string;
  }
  return check;
}
