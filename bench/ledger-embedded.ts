// `npm run bench:ledger`: throughput (grants/s) and commit latency (p50/p99) of the embedded
// ledger at concurrency 1, 16 and 64, on a fresh embedded PostgreSQL. For each concurrency a
// short warm-up, then a closed loop: c workers each submit `consent.GrantConsent` back to back
// for a fixed time; a submit's latency runs from the call to its promise resolving (after
// the block's COMMIT). The mean block size is the transactions committed over the blocks cut
// in the measured window. The chain is verified at the end (`verifyEmbeddedLedger`). Results
// go to bench/results/ledger-embedded.json.
//   options: --duration 8 --warmup 2 --concurrency 1,16,64 --patients 1000
//            --query-timing  (time every ledger query by kind; prints it, writes no results)
//            --signed  (every patient registers a device key; at each concurrency, phases of
//                       unsigned and of patient-signed grants alternate --rounds times (presigned,
//                       so only the chaincode's verification is measured), and their ratio)
//            --rounds 3  (with --signed: how many unsigned/signed pairs)
import 'reflect-metadata';
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../src/database/data-source';
import { EmbeddedPostgresServer } from '../src/database/embedded-postgres';
import { EmbeddedLedger } from '../src/ledger/embedded/embedded-ledger';
import { LedgerSeal } from '../src/ledger/embedded/seal';
import { RowAuthenticator } from '../src/records/crypto';
import { LedgerReport, verifyEmbeddedLedger } from '../src/ledger/embedded/verify';
import { QueryTimer } from './ledger/query-timing';
import { measureRoundTrips } from './ledger/round-trips';
import { GrantLoad, PhaseResult, phaseSettings, positive, round } from './lib/grant-load';
import { PatientSigners } from './lib/patient-signers';

/** Enough presigned grants for a phase at well above the target rate. */
const PRESIGN_PER_SECOND = 3000;

const TARGET = { concurrency: 64, txPerSec: 1000 };
const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'ledger-embedded.json');

interface Settings {
  durationSeconds: number;
  warmupSeconds: number;
  concurrencies: number[];
  patients: number;
  queryTiming: boolean;
  signed: boolean;
  rounds: number;
}

function settings(): Settings {
  const { phases, values } = phaseSettings({
    patients: { type: 'string', default: '1000' },
    'query-timing': { type: 'boolean', default: false },
    signed: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
  });
  return {
    ...phases,
    patients: Math.floor(positive('patients', String(values.patients))),
    queryTiming: values['query-timing'] === true,
    signed: values.signed === true,
    rounds: Math.floor(positive('rounds', String(values.rounds))),
  };
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
    // Sealed as the API seals it (a throwaway KEK): every block and state row carries its MAC.
    const seal = new LedgerSeal(new RowAuthenticator(createSecretKey(randomBytes(32))));
    ledger = new EmbeddedLedger(pool, { organization: 'org1', seal });
    const load = new GrantLoad(ledger, s.patients);
    const signers = s.signed ? new PatientSigners() : undefined;
    if (signers) await signers.register(ledger, load.patientIds());
    const keyTransactions = signers ? s.patients : 0;

    const results: PhaseResult[] = [];
    for (const c of s.concurrencies) {
      // Unsigned and signed phases alternate: the ledger grows as it runs and this machine's
      // load drifts, so each kind is measured across the whole window.
      const sequence = signers
        ? Array.from({ length: s.rounds }, () => [false, true]).flat()
        : [false];
      for (const sign of sequence) {
        const presigned = sign
          ? (g: Parameters<PatientSigners['signed']>[0]) => signers!.signed(g)
          : undefined;
        await load.run(
          c,
          s.warmupSeconds,
          presigned,
          Math.ceil(s.warmupSeconds * PRESIGN_PER_SECOND),
        );
        timer?.reset();
        const result = await load.run(
          c,
          s.durationSeconds,
          presigned,
          Math.ceil(s.durationSeconds * PRESIGN_PER_SECOND),
        );
        results.push(result);
        console.log(
          `  c=${c}${sign ? ' signed' : ''}: ${result.txPerSec} tx/s, p50 ${result.p50Ms} ms, ` +
            `p99 ${result.p99Ms} ms, ${result.meanBlockSize} tx/block, ` +
            `${result.cpuMsPerTx} ms CPU/tx`,
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
    }

    if (timer) {
      console.log('  world-state reads with the ledger idle:');
      console.table(await measureRoundTrips(pool));
    }

    // What an API start-up now does before it serves: walk the whole chain, learn which block
    // last wrote each key, and compare the world state with it.
    const o0 = Date.now();
    const opened = await new EmbeddedLedger(pool, { organization: 'org1', seal }).open();
    const open = { ok: opened === null, seconds: round((Date.now() - o0) / 1000) };
    console.log(`start-up walk of the chain: ${open.seconds} s${open.ok ? '' : ` (${opened})`}`);

    const v0 = Date.now();
    const report: LedgerReport = await verifyEmbeddedLedger(pool, seal);
    const verify = {
      ok: report.problems.length === 0 && report.transactions === load.committed + keyTransactions,
      ...report,
      expectedTransactions: load.committed + keyTransactions,
      seconds: round((Date.now() - v0) / 1000),
    };

    console.log('\nEmbedded ledger, consent.GrantConsent, closed loop');
    console.table(
      results.map((r) => ({
        concurrency: r.concurrency,
        signed: r.signed,
        'tx/s': r.txPerSec,
        'p50 ms': r.p50Ms,
        'p99 ms': r.p99Ms,
        'tx/block': r.meanBlockSize,
        total: r.total,
        blocks: r.blocks,
        failures: r.failures,
        'CPU ms/tx': r.cpuMsPerTx,
      })),
    );
    const signedCost = s.concurrencies.flatMap((c) => {
      // Over all phases of a kind: grants per second of their time, CPU per grant.
      const pooled = (signed: boolean) => {
        const phases = results.filter((r) => r.concurrency === c && r.signed === signed);
        const total = phases.reduce((n, r) => n + r.total, 0);
        const seconds = phases.reduce((n, r) => n + r.elapsedSeconds, 0);
        const cpuMs = phases.reduce((n, r) => n + r.cpuMsPerTx! * r.total, 0);
        return { phases: phases.length, txPerSec: total / seconds, cpuMsPerTx: cpuMs / total };
      };
      const plain = pooled(false);
      const signed = pooled(true);
      return plain.phases && signed.phases
        ? [
            {
              concurrency: c,
              unsignedTxPerSec: round(plain.txPerSec, 1),
              signedTxPerSec: round(signed.txPerSec, 1),
              throughputRatio: round(signed.txPerSec / plain.txPerSec, 3),
              unsignedCpuMsPerTx: round(plain.cpuMsPerTx, 3),
              extraCpuMsPerTx: round(signed.cpuMsPerTx - plain.cpuMsPerTx, 3),
            },
          ]
        : [];
    });
    for (const r of signedCost) {
      console.log(
        `signed/unsigned at c=${r.concurrency} (pooled over ${s.rounds} rounds): ` +
          `${r.signedTxPerSec} / ${r.unsignedTxPerSec} tx/s = ×${r.throughputRatio}; ` +
          `CPU per grant ${r.unsignedCpuMsPerTx} ms + ${r.extraCpuMsPerTx} ms when signed`,
      );
    }
    const atTarget = results.find((r) => r.concurrency === TARGET.concurrency && !r.signed);
    if (atTarget) {
      const met = atTarget.txPerSec >= TARGET.txPerSec;
      console.log(
        `target ≥ ${TARGET.txPerSec} tx/s at concurrency ${TARGET.concurrency}: ` +
          `${met ? 'met' : 'NOT met'} (${atTarget.txPerSec} tx/s)`,
      );
    }
    console.log(
      `verify: ${verify.ok ? 'valid' : 'INVALID'} — ${report.blocks} blocks, ` +
        `${report.transactions} transactions (expected ${verify.expectedTransactions}), ` +
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
        ...(signers ? { signedCost } : {}),
        target: { ...TARGET, met: atTarget ? atTarget.txPerSec >= TARGET.txPerSec : null },
        verify,
        startupWalk: { ...open, blocks: report.blocks, transactions: report.transactions },
      };
      await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
      await writeFile(RESULTS_FILE, JSON.stringify(out, null, 2) + '\n');
      console.log(`results written to ${RESULTS_FILE}`);
    }
    if (!verify.ok || !open.ok) process.exitCode = 1;
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
