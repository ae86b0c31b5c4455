// `npm run bench:ledger`: throughput (grants/s) and commit latency (p50/p99) of the embedded
// ledger at concurrency 1, 16 and 64, on a fresh embedded PostgreSQL. For each concurrency a
// short warm-up, then a closed loop: c workers each submit `consent.GrantConsent` back to back
// for a fixed time; a submit's latency runs from the call to its promise resolving (after
// the block's COMMIT). The mean block size is the transactions committed over the blocks cut
// in the measured window. The chain is verified at the end (`verifyEmbeddedLedger`). Results
// go to bench/results/ledger-embedded.json.
//   options: --duration 8 --warmup 2 --concurrency 1,16,64 --patients 1000
//            --query-timing  (time every ledger query by kind; prints it, writes no results)
import 'reflect-metadata';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../src/database/data-source';
import { EmbeddedPostgresServer } from '../src/database/embedded-postgres';
import { EmbeddedLedger } from '../src/ledger/embedded/embedded-ledger';
import { LedgerReport, verifyEmbeddedLedger } from '../src/ledger/embedded/verify';
import { QueryTimer } from './ledger/query-timing';
import { measureRoundTrips } from './ledger/round-trips';

const TARGET = { concurrency: 64, txPerSec: 1000 };
const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'ledger-embedded.json');

interface Settings {
  durationSeconds: number;
  warmupSeconds: number;
  concurrencies: number[];
  patients: number;
  queryTiming: boolean;
}

interface PhaseResult {
  concurrency: number;
  txPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanBlockSize: number;
  total: number;
  blocks: number;
  failures: number;
  elapsedSeconds: number;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '1,16,64' },
      patients: { type: 'string', default: '1000' },
      'query-timing': { type: 'boolean', default: false },
    },
  });
  const positive = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const concurrencies = values.concurrency.split(',').map((c) => positive('concurrency', c));
  if (concurrencies.some((c) => !Number.isInteger(c))) {
    throw new Error('--concurrency must be a comma-separated list of positive integers');
  }
  return {
    durationSeconds: positive('duration', values.duration),
    warmupSeconds: positive('warmup', values.warmup),
    concurrencies,
    patients: Math.floor(positive('patients', values.patients)),
    queryTiming: values['query-timing'],
  };
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

async function blockCount(pool: Pool): Promise<number> {
  const r = await pool.query<{ n: string }>(
    'SELECT coalesce(max(number), -1) + 1 AS n FROM ledger_blocks',
  );
  return Number(r.rows[0].n);
}

class GrantLoad {
  private next = 0;
  committed = 0;

  constructor(
    private readonly ledger: EmbeddedLedger,
    private readonly patients: number,
  ) {}

  /** c workers submitting grants back to back until `seconds` have passed. */
  async run(concurrency: number, seconds: number) {
    const latencies: number[] = [];
    let failures = 0;
    let firstError: unknown;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(seconds * 1e9));
    const worker = async () => {
      while (process.hrtime.bigint() < deadline) {
        const n = this.next++;
        const grant = {
          id: `bench-grant-${n}`,
          patientId: `bench-patient-${n % this.patients}`,
          grantee: { type: 'CLINICIAN', id: 'dr-1' },
          purpose: 'TREATMENT',
          actions: ['READ'],
        };
        const t0 = process.hrtime.bigint();
        try {
          await this.ledger.submit('consent', 'GrantConsent', [JSON.stringify(grant)]);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          this.committed++;
        } catch (e) {
          failures++;
          firstError ??= e;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (firstError) {
      console.error(`  ${failures} submits failed; first: ${(firstError as Error).message}`);
    }
    return { latencies, failures, elapsedSeconds };
  }
}

async function main(): Promise<void> {
  const s = settings();
  const dir = await mkdtemp(join(tmpdir(), 'custodia-bench-ledger-'));
  const server = new EmbeddedPostgresServer({ dir });
  let pool: Pool | undefined;
  let ledger: EmbeddedLedger | undefined;
  try {
    const t0 = Date.now();
    await server.start();
    const url = await server.createDatabase('bench');
    const ds = new DataSource(dataSourceOptions(url));
    await ds.initialize();
    await ds.runMigrations();
    await ds.destroy();
    pool = new Pool({ connectionString: url, max: 10 });
    const timer = s.queryTiming ? new QueryTimer(pool) : undefined;
    const pg = await pool.query<{ version: string; fsync: string; sc: string }>(
      `SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
              current_setting('synchronous_commit') AS sc`,
    );
    console.log(
      `PostgreSQL ${pg.rows[0].version} (fsync=${pg.rows[0].fsync}, ` +
        `synchronous_commit=${pg.rows[0].sc}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    ledger = new EmbeddedLedger(pool, { organization: 'org1' });
    const load = new GrantLoad(ledger, s.patients);

    const results: PhaseResult[] = [];
    for (const c of s.concurrencies) {
      await load.run(c, s.warmupSeconds);
      timer?.reset();
      const blocksBefore = await blockCount(pool);
      const { latencies, failures, elapsedSeconds } = await load.run(c, s.durationSeconds);
      const blocks = (await blockCount(pool)) - blocksBefore;
      latencies.sort((a, b) => a - b);
      const result: PhaseResult = {
        concurrency: c,
        txPerSec: round(latencies.length / elapsedSeconds, 1),
        p50Ms: round(percentile(latencies, 50)),
        p99Ms: round(percentile(latencies, 99)),
        meanBlockSize: round(latencies.length / Math.max(blocks, 1)),
        total: latencies.length,
        blocks,
        failures,
        elapsedSeconds: round(elapsedSeconds, 3),
      };
      results.push(result);
      console.log(
        `  c=${c}: ${result.txPerSec} tx/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ` +
          `${result.meanBlockSize} tx/block`,
      );
      if (timer) {
        const block = timer.blockTiming();
        const queries = timer.queries().map((q) => ({
          ...q,
          totalMs: round(q.totalMs),
          meanMs: round(q.meanMs, 3),
          maxMs: round(q.maxMs),
          perTxMs: round(q.totalMs / result.total, 4),
        }));
        console.log(
          `    per block: ${round(block.meanBlockMs)} ms = ${round(block.meanQueryMs)} ms ` +
            `in queries + ${round(block.meanJsMs)} ms JavaScript (${block.blocks} blocks)`,
        );
        console.table(queries);
      }
    }

    if (timer) {
      console.log('  world-state reads with the ledger idle:');
      console.table(await measureRoundTrips(pool));
    }

    const v0 = Date.now();
    const report: LedgerReport = await verifyEmbeddedLedger(pool);
    const verify = {
      ok: report.problems.length === 0 && report.transactions === load.committed,
      ...report,
      expectedTransactions: load.committed,
      seconds: round((Date.now() - v0) / 1000),
    };

    console.log('\nEmbedded ledger, consent.GrantConsent, closed loop');
    console.table(
      results.map((r) => ({
        concurrency: r.concurrency,
        'tx/s': r.txPerSec,
        'p50 ms': r.p50Ms,
        'p99 ms': r.p99Ms,
        'tx/block': r.meanBlockSize,
        total: r.total,
        blocks: r.blocks,
        failures: r.failures,
      })),
    );
    const atTarget = results.find((r) => r.concurrency === TARGET.concurrency);
    if (atTarget) {
      const met = atTarget.txPerSec >= TARGET.txPerSec;
      console.log(
        `target ≥ ${TARGET.txPerSec} tx/s at concurrency ${TARGET.concurrency}: ` +
          `${met ? 'met' : 'NOT met'} (${atTarget.txPerSec} tx/s)`,
      );
    }
    console.log(
      `verify: ${verify.ok ? 'valid' : 'INVALID'} — ${report.blocks} blocks, ` +
        `${report.transactions} transactions (expected ${load.committed}), ` +
        `${report.stateKeys} state keys, ${report.historyRows} history rows` +
        (report.problems.length ? `; problems: ${report.problems.join('; ')}` : ''),
    );

    if (s.queryTiming) {
      console.log('(--query-timing: instrumented run, results file not written)');
    } else {
      const cpu = cpus();
      const out = {
        date: new Date().toISOString(),
        machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', node: process.version },
        postgres: {
          version: pg.rows[0].version,
          fsync: pg.rows[0].fsync,
          synchronousCommit: pg.rows[0].sc,
        },
        settings: {
          durationSeconds: s.durationSeconds,
          warmupSeconds: s.warmupSeconds,
          patients: s.patients,
          poolSize: 10,
        },
        results,
        target: { ...TARGET, met: atTarget ? atTarget.txPerSec >= TARGET.txPerSec : null },
        verify,
      };
      await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
      await writeFile(RESULTS_FILE, JSON.stringify(out, null, 2) + '\n');
      console.log(`results written to ${RESULTS_FILE}`);
    }
    if (!verify.ok) process.exitCode = 1;
  } finally {
    await ledger?.close();
    await pool?.end();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
