// Checks the access log against the ledger, not against itself: the ledger's latest anchored
// head must be in the log with the same hash, and the chain from genesis to it whole. Local
// copies of anchors prove nothing (whoever can delete events can delete them too).
import type { AuditHead } from '@custodia/chaincode';
import { NotFoundError } from '../common/errors';
import type { Ledger } from '../ledger';
import {
  AccessLogVerification,
  AnchoredHead,
  AuditChainRef,
  ChainedEvent,
  ChainWalk,
  chainedEventFromRow,
} from './audit-chain';
import { PermitCheck, PermitJustifier } from './justify';

/** Runs one SQL statement and returns its rows: a pg Pool or a TypeORM DataSource behind it. */
export type QueryRows = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

export interface AccessLogCheckOptions {
  /** Count only this patient's events (the whole global chain is walked all the same). */
  patientId?: string;
  /** Given every page the walk reads, in order, so other checks need no walk of their own. */
  onPage?: (events: ChainedEvent[]) => Promise<void>;
}

const PAGE = 1000;

/**
 * Walks an instance's access log (one global chain) and checks it against the head the ledger
 * anchored for it: the head of `chain.chainId` of `chain.organization`. Events after that head
 * are whole but not yet provable: they are counted in `unanchoredEvents`, not reported as
 * problems.
 */
export async function checkAccessLog(
  query: QueryRows,
  ledger: Pick<Ledger, 'evaluate'>,
  chain: AuditChainRef,
  options: AccessLogCheckOptions = {},
): Promise<AccessLogVerification> {
  // Each head anchored is noted here after the ledger committed it, so a note read before
  // the ledger's head is covered by it: a note ahead of the head means the ledger lost
  // anchors (restored from a backup, or rolled back).
  const [noted] = await query(
    'SELECT seq, ledger_tx_id FROM audit_anchors ORDER BY seq DESC LIMIT 1',
    [],
  );
  const problems: string[] = [];
  let anchored: AnchoredHead | null = null;
  try {
    anchored = await ledger.evaluate<AuditHead>('audit', 'GetAuditHead', [
      chain.organization,
      chain.chainId,
    ]);
  } catch (e) {
    if (!(e instanceof NotFoundError)) {
      problems.push(
        'the ledger could not be asked for the anchored head of the access log; nothing in it is proven',
      );
    }
  }
  if (noted && Number(noted.seq) > (anchored?.seq ?? 0) && problems.length === 0) {
    problems.push(
      `this log noted event ${noted.seq} anchored on the ledger (transaction ${String(noted.ledger_tx_id)}), but the ledger's head for the chain is ${anchored ? `event ${anchored.seq}` : 'absent'}: the ledger lost anchors (restored from a backup, or rolled back)`,
    );
  }
  const walk = new ChainWalk(anchored, options.patientId);
  for (;;) {
    const rows = await query('SELECT * FROM access_events WHERE seq > $1 ORDER BY seq LIMIT $2', [
      walk.lastFed,
      PAGE,
    ]);
    const events = rows.map(chainedEventFromRow);
    walk.feed(events);
    await options.onPage?.(events);
    if (rows.length < PAGE) break;
  }
  const result = walk.result();
  return { ...result, problems: [...problems, ...result.problems] };
}

/**
 * The access log checked against the ledger in one walk: the chain up to the anchored head
 * (`checkAccessLog`), and every PERMIT (one patient's, or all) against the grant or emergency
 * the ledger held. For `verify-ledger` and `verifyAccessLog`.
 */
export async function verifyAccessLogAgainstLedger(
  query: QueryRows,
  ledger: Pick<Ledger, 'evaluate'>,
  auditChain: AuditChainRef,
  patientId?: string,
): Promise<AccessLogVerification & { permits: PermitCheck }> {
  const justifier = new PermitJustifier(query, ledger, patientId);
  const chain = await checkAccessLog(query, ledger, auditChain, {
    patientId,
    onPage: (events) => justifier.check(events),
  });
  return { ...chain, permits: justifier.result() };
}

/** `checkAccessLog` over a node-postgres pool, as `verify-ledger` runs it. */
export function poolRows(pool: {
  query(sql: string, params: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}): QueryRows {
  return async (sql, params) => (await pool.query(sql, params)).rows;
}
