import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { AppConfig } from '../config';
import type { Ledger } from '../ledger';
import type { IntegrityMonitor } from '../observability';
import type { LedgerAnchors } from './ledger-anchors';
import { RecordAnchoring } from './record-anchoring';
import type { RecordOpener } from './record-opener';
import type { RecordEntity } from './record.entity';
import type { VersionRow } from './record-rows';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function pendingRow(id: string, contentHash: string, version = 1): VersionRow {
  const at = new Date('2025-01-01T00:00:00Z');
  return {
    id,
    patient_id: 'p1',
    version,
    resource_type: 'Observation',
    category: 'laboratory',
    sensitivity: 'NORMAL',
    key_id: 'k1',
    iv: Buffer.alloc(12),
    auth_tag: Buffer.alloc(16),
    ciphertext: Buffer.alloc(8),
    binding_version: 2,
    content_hash: contentHash,
    hash_version: 2,
    anchor_state: 'PENDING',
    anchored_hash: null,
    ledger_tx_id: null,
    created_at: at,
    updated_at: at,
  };
}

/**
 * An outbox over a table of pending rows (whose exclusion list it honours, as the SQL does),
 * an opener that recomputes the hashes given, and a ledger that records what it is given.
 */
function outbox(rows: VersionRow[], recomputed: Record<string, string | null>, sweepMs = 60_000) {
  const passes: string[][] = [];
  const db = {
    query: async (sql: string, params: unknown[]) => {
      if (!sql.includes('UNION ALL')) {
        // The row marked anchored.
        const i = rows.findIndex((r) => r.id === params[0] && r.version === params[1]);
        if (i >= 0) rows.splice(i, 1);
        return [];
      }
      const refused = params[1] as string[];
      passes.push(refused);
      return rows.filter((r) => !refused.includes(`${r.id}:${r.version}`));
    },
  } as unknown as DataSource;
  const submitted: string[][] = [];
  const ledger = {
    submit: async (_contract: string, _fn: string, args: string[]) => {
      submitted.push(args);
      return { txId: sha(`tx:${args[0]}`) };
    },
  } as unknown as Ledger;
  const config = { anchorRetryMs: 1000, anchorSweepMs: sweepMs } as AppConfig;
  const anchors = { remember: () => undefined } as unknown as LedgerAnchors;
  const opener = {
    commitmentOf: async (row: RecordEntity) => recomputed[row.id],
  } as unknown as RecordOpener;
  const reports: Record<string, unknown>[] = [];
  const integrity = {
    report: (_kind: string, _what: string, ids: Record<string, unknown>) => reports.push(ids),
  } as unknown as IntegrityMonitor;
  const anchoring = new RecordAnchoring(db, ledger, config, anchors, opener, integrity);
  return { anchoring, submitted, passes, reports };
}

describe('RecordAnchoring', () => {
  afterEach(() => jest.useRealTimers());

  it('anchors the hash it recomputes from the row, which the stored column must equal', async () => {
    const { anchoring, submitted } = outbox([pendingRow('r1', sha('r1'))], { r1: sha('r1') });
    expect(await anchoring.drainOnce()).toEqual({ anchored: 1, pending: 0, refused: 0 });
    expect(submitted).toEqual([['r1', '1', 'p1', sha('r1')]]);
  });

  it('refuses, reports and does not read again a row whose stored hash is not its content', async () => {
    const rows = [pendingRow('forged', sha('other')), pendingRow('fine', sha('fine'))];
    const { anchoring, submitted, passes, reports } = outbox(rows, {
      forged: sha('forged'),
      fine: sha('fine'),
    });
    expect(await anchoring.drainOnce()).toEqual({ anchored: 1, pending: 0, refused: 1 });
    expect(submitted.map((args) => args[0])).toEqual(['fine']);
    expect(reports).toEqual([{ recordId: 'forged', version: 1 }]);
    // The next pass leaves it out, so it neither fills a batch nor is reported at every pass.
    expect(await anchoring.drainOnce()).toEqual({ anchored: 0, pending: 0, refused: 0 });
    expect(passes[1]).toEqual(['forged:1']);
    expect(reports).toHaveLength(1);
  });

  it('refuses a row that does not open (the opener reports it)', async () => {
    const { anchoring, submitted, reports } = outbox([pendingRow('broken', sha('broken'))], {
      broken: null,
    });
    expect(await anchoring.drainOnce()).toEqual({ anchored: 0, pending: 0, refused: 1 });
    expect(submitted).toEqual([]);
    expect(reports).toEqual([]);
  });

  it('sweeps for pending rows it never deferred, every ANCHOR_SWEEP_INTERVAL_MS', async () => {
    jest.useFakeTimers();
    const rows: VersionRow[] = [];
    const { anchoring, submitted, passes } = outbox(rows, { late: sha('late') });
    anchoring.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(0);
    expect(passes).toHaveLength(1);
    // Set PENDING behind this process's back (another instance, or the database).
    rows.push(pendingRow('late', sha('late')));
    await jest.advanceTimersByTimeAsync(59_000);
    expect(submitted).toEqual([]);
    // The sweep at 60 s schedules a pass at once (a 0 ms timeout, which Node makes 1 ms).
    await jest.advanceTimersByTimeAsync(1_001);
    expect(passes).toHaveLength(2);
    await anchoring.onApplicationShutdown(); // awaits the pass under way
    expect(submitted.map((args) => args[0])).toEqual(['late']);
  });

  it('does not sweep when the interval is 0: start-up and deferrals only', async () => {
    jest.useFakeTimers();
    const { anchoring, passes } = outbox([], {}, 0);
    anchoring.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    expect(passes).toHaveLength(1);
    await anchoring.onApplicationShutdown();
  });
});
