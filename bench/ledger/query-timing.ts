// Times every query the embedded ledger sends through a pg Pool, grouped by what the query
// does, so a benchmark can say how much of a block's commit is spent waiting on PostgreSQL.
// Wraps `query` on each client the pool opens; costs a few microseconds per query, so the
// benchmark only installs it when asked (--query-timing).
import { Pool, PoolClient } from 'pg';

/** Statement kinds of EmbeddedLedger.cutBlock / persist / reader, first match wins. */
const KINDS: [string, RegExp][] = [
  ['BEGIN', /^BEGIN\b/i],
  ['COMMIT', /^COMMIT\b/i],
  ['ROLLBACK', /^ROLLBACK\b/i],
  ['advisory lock', /pg_advisory_xact_lock/],
  ['chain head', /FROM ledger_blocks ORDER BY number DESC LIMIT 1/],
  ['state get (one per getState)', /^SELECT value FROM ledger_world_state WHERE key = \$1/],
  ['state range scan', /^SELECT key, value FROM ledger_world_state WHERE key >=/],
  ['INSERT ledger_blocks', /^INSERT INTO ledger_blocks/],
  ['upsert ledger_world_state', /^INSERT INTO ledger_world_state/],
  ['DELETE ledger_world_state', /^DELETE FROM ledger_world_state/],
  ['INSERT ledger_history', /^INSERT INTO ledger_history/],
];

export interface QueryStat {
  kind: string;
  count: number;
  totalMs: number;
  meanMs: number;
  maxMs: number;
}

export interface BlockTiming {
  /** Blocks observed (BEGIN … COMMIT on one client, holding the writer lock). */
  blocks: number;
  /** Mean wall time from BEGIN sent to COMMIT acknowledged. */
  meanBlockMs: number;
  /** Of that, mean time spent waiting on queries (sum of query round trips). */
  meanQueryMs: number;
  /** The rest: JavaScript between queries (chaincode execution, hashing, encoding, pg driver). */
  meanJsMs: number;
}

export class QueryTimer {
  private readonly stats = new Map<string, { count: number; totalNs: bigint; maxNs: bigint }>();
  private readonly open = new WeakMap<PoolClient, { start: bigint; queryNs: bigint }>();
  private blocks = 0;
  private blockNs = 0n;
  private blockQueryNs = 0n;

  constructor(pool: Pool) {
    pool.on('connect', (client: PoolClient) => this.wrap(client));
  }

  reset(): void {
    this.stats.clear();
    this.blocks = 0;
    this.blockNs = 0n;
    this.blockQueryNs = 0n;
  }

  queries(): QueryStat[] {
    return [...this.stats]
      .map(([kind, s]) => ({
        kind,
        count: s.count,
        totalMs: Number(s.totalNs) / 1e6,
        meanMs: Number(s.totalNs) / 1e6 / s.count,
        maxMs: Number(s.maxNs) / 1e6,
      }))
      .sort((a, b) => b.totalMs - a.totalMs);
  }

  blockTiming(): BlockTiming {
    const n = Math.max(this.blocks, 1);
    const meanBlockMs = Number(this.blockNs) / 1e6 / n;
    const meanQueryMs = Number(this.blockQueryNs) / 1e6 / n;
    return { blocks: this.blocks, meanBlockMs, meanQueryMs, meanJsMs: meanBlockMs - meanQueryMs };
  }

  private wrap(client: PoolClient): void {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const original = client.query.bind(client) as (...args: any[]) => any;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (client as any).query = (...args: any[]) => {
      const text = typeof args[0] === 'string' ? args[0] : (args[0]?.text as string | undefined);
      const start = process.hrtime.bigint();
      const result = original(...args) as unknown;
      if (typeof text !== 'string' || !(result instanceof Promise)) return result;
      const sql = text.trim();
      const kind = KINDS.find(([, re]) => re.test(sql))?.[0] ?? `other: ${sql.slice(0, 60)}`;
      if (kind === 'BEGIN') this.open.set(client, { start, queryNs: 0n });
      return result.then((r: unknown) => {
        const end = process.hrtime.bigint();
        this.record(kind, end - start);
        const block = this.open.get(client);
        if (block) {
          block.queryNs += end - start;
          if (kind === 'COMMIT' || kind === 'ROLLBACK') {
            this.open.delete(client);
            this.blocks++;
            this.blockNs += end - block.start;
            this.blockQueryNs += block.queryNs;
          }
        }
        return r;
      });
    };
  }

  private record(kind: string, ns: bigint): void {
    const s = this.stats.get(kind) ?? { count: 0, totalNs: 0n, maxNs: 0n };
    s.count++;
    s.totalNs += ns;
    if (ns > s.maxNs) s.maxNs = ns;
    this.stats.set(kind, s);
  }
}
