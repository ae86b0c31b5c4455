// Walks the access log's hash chain and checks the heads anchored on the ledger against it
// (so a log cut short after its last anchor is caught too), for `custodia verify-ledger`.
import type { AuditHead } from '@custodia/chaincode';
import { Pool } from 'pg';
import type { Ledger } from '../ledger';
import { AUDIT_CHAIN_ID } from './access-log';
import { AUDIT_GENESIS, ChainedEvent, chainedEventFromRow, findBreak } from './audit-chain';

export interface AuditReport {
  events: number;
  anchors: number;
  problems: string[];
}

const PAGE = 1000;

export async function verifyAuditChain(
  db: Pool,
  ledger: Ledger,
  organization: string,
): Promise<AuditReport> {
  const report: AuditReport = { events: 0, anchors: 0, problems: [] };
  const hashes = new Map<number, string>();
  let prev = AUDIT_GENESIS;
  let nextSeq = 1;
  for (;;) {
    const { rows } = await db.query(
      'SELECT * FROM access_events WHERE seq >= $1 ORDER BY seq LIMIT $2',
      [nextSeq, PAGE],
    );
    if (rows.length === 0) break;
    const events: ChainedEvent[] = rows.map(chainedEventFromRow);
    if (events[0].seq !== nextSeq) {
      report.problems.push(`access event ${nextSeq} is missing`);
      break;
    }
    const broken = findBreak(prev, events);
    if (broken) {
      report.problems.push(`${broken}; the access log cannot be trusted from there on`);
      break;
    }
    for (const e of events) hashes.set(e.seq, e.hash);
    report.events += events.length;
    prev = events[events.length - 1].hash;
    nextSeq = events[events.length - 1].seq + 1;
    if (rows.length < PAGE) break;
  }

  const anchors = await db.query('SELECT seq, head_hash FROM audit_anchors ORDER BY seq');
  report.anchors = anchors.rows.length;
  for (const a of anchors.rows) {
    const seq = Number(a.seq);
    if (!hashes.has(seq)) {
      if (report.problems.length === 0) {
        report.problems.push(
          `access event ${seq} was anchored on the ledger but is gone from the log`,
        );
      }
    } else if (hashes.get(seq) !== a.head_hash) {
      report.problems.push(`access event ${seq} differs from the head anchored on the ledger`);
    }
  }
  const last = anchors.rows[anchors.rows.length - 1];
  if (last) {
    try {
      const head = await ledger.evaluate<AuditHead>('audit', 'GetAuditHead', [
        organization,
        AUDIT_CHAIN_ID,
      ]);
      if (head.seq !== Number(last.seq) || head.headHash !== last.head_hash) {
        report.problems.push(
          `the ledger's anchored head (event ${head.seq}) differs from the local record of it (event ${last.seq})`,
        );
      }
    } catch {
      report.problems.push(`the ledger holds no anchored head for event ${last.seq}`);
    }
  }
  return report;
}
