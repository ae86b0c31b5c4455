// What `custodia verify-ledger` checks, as one function: the embedded ledger's blocks, world
// state and history, and the access log's chain against the head anchored on the ledger.
import { Pool } from 'pg';
import { checkAccessLog, poolRows } from './audit/verify';
import { EmbeddedLedger } from './ledger/embedded/embedded-ledger';
import { verifyEmbeddedLedger } from './ledger/embedded/verify';

export interface Verification {
  ok: boolean;
  /** What was checked, then one line per problem. */
  lines: string[];
}

export async function verifyAll(pool: Pool, organization: string): Promise<Verification> {
  const ledger = await verifyEmbeddedLedger(pool);
  const audit = await checkAccessLog(
    poolRows(pool),
    new EmbeddedLedger(pool, { organization }),
    organization,
  );
  const problems = [...ledger.problems, ...audit.problems];
  const lines = [
    `Blocks: ${ledger.blocks} (${ledger.transactions} transactions) walked; hash chain checked.`,
    `World state: ${ledger.stateKeys} keys; history: ${ledger.historyRows} rows; both replayed from the blocks and compared.`,
    `Access log: ${audit.eventsChecked} events walked along their hash chain; ` +
      (audit.anchoredThrough === null
        ? 'the ledger holds no anchored head yet'
        : `anchored on the ledger through event ${audit.anchoredThrough}`) +
      `; ${audit.unanchoredEvents} event(s) not yet anchored, so not yet provable.`,
    ...problems.map((p) => `  BROKEN: ${p}`),
    problems.length
      ? `Verification FAILED: ${problems.length} problem(s).`
      : 'Ledger and access log verified: no breaks.',
  ];
  return { ok: problems.length === 0, lines };
}
