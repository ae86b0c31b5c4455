// `npm run bench:fabric`: throughput (grants/s) and commit latency (p50/p99) of the Fabric
// ledger adapter against the native test network (fabric-network/network.sh) at concurrency
// 1, 16 and 64. As bench:ledger does for the embedded ledger: per concurrency a short warm-up,
// then a closed loop of c workers each submitting `consent.GrantConsent` back to back through
// Org1's peer for a fixed time; a submit's latency runs from the call to its commit status
// (endorsed by both orgs' peers, ordered by Raft, validated and committed). By default the
// network runs with the test settings (batch timeout 200 ms, at most 10 transactions a block),
// which bound what it can do: at concurrency 1 every transaction waits for the batch timeout.
// A network that is already up is used and left up; otherwise the bench brings one up and
// takes it down.
// Then the same closed loop through Org1's GraphQL API (grantConsent: the API's consent path),
// and the propagation between two organisations: Org1's and Org2's API (each its own embedded
// PostgreSQL and peer identity) and, --rounds times one after another, a grant through Org1's
// GraphQL API until Org2 serves the patient's record under it, and its revocation until Org2
// answers CONSENT_REQUIRED (see bench/lib/two-organisations.ts).
// The network's batching is whatever `up` was given (FABRIC_BATCH_TIMEOUT,
// FABRIC_MAX_MESSAGE_COUNT; test settings by default). Results go to
// bench/results/ledger-fabric.json, or ledger-fabric-batch<count>-<timeout>.json for other
// batch settings.
//   options: --duration 8 --warmup 2 --concurrency 1,16,64 --rounds 50 (0: no propagation)
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fabricConfigFromEnv, FabricLedger } from '../src/ledger/fabric';
import { GrantLoad, PhaseResult, phaseSettings, round } from './lib/grant-load';
import { networkCpuSeconds, ownCpuSeconds } from './lib/network-cpu';
import {
  grantsThroughApi,
  measurePropagation,
  orgFabricEnv,
  PropagationResult,
  startInstance,
  stopInstance,
} from './lib/two-organisations';

const ROOT = resolve(__dirname, '..', '..');
const NETWORK_SH = join(ROOT, 'fabric-network', 'network.sh');
const RESULTS_FILE = join(ROOT, 'bench', 'results', 'ledger-fabric.json');

function settings() {
  const { phases, values } = phaseSettings({ rounds: { type: 'string', default: '50' } });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 0) throw new Error('--rounds must be a whole number');
  return { ...phases, rounds };
}

/** Nearest-rank percentile of an ascending array. */
function network(command: 'up' | 'down' | 'status'): boolean {
  try {
    execFileSync('bash', [NETWORK_SH, command], { stdio: ['ignore', 'ignore', 'inherit'] });
    return true;
  } catch {
    return false;
  }
}

/** The FABRIC_* variables that `network.sh up` wrote for Org1's client user. */
function networkEnv(): Record<string, string> {
  const dir = readFileSync(join(ROOT, 'fabric-network', '.state'), 'utf8').trim();
  return Object.fromEntries(
    readFileSync(join(dir, 'fabric.env'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

interface CpuPerTx {
  /** CPU milliseconds per committed transaction: the network's processes, and this one's. */
  networkCpuMsPerTx: number;
  clientCpuMsPerTx: number;
  /** What 2 cores could commit per second if they did nothing else, at that cost. */
  txPerSecBoundOn2Cores: number;
}

/** Runs a measured phase and adds the CPU it cost per transaction. */
async function cpuPerTx<T extends { total: number }>(
  networkDir: string,
  phase: () => Promise<T>,
): Promise<T & CpuPerTx> {
  const [net0, own0] = [networkCpuSeconds(networkDir), ownCpuSeconds()];
  const result = await phase();
  const net = networkCpuSeconds(networkDir) - net0;
  const own = ownCpuSeconds() - own0;
  const n = Math.max(result.total, 1);
  return {
    ...result,
    networkCpuMsPerTx: round((net * 1000) / n),
    clientCpuMsPerTx: round((own * 1000) / n),
    txPerSecBoundOn2Cores: round((2 * n) / (net + own), 1),
  };
}

async function main(): Promise<void> {
  const s = settings();
  const wasUp = existsSync(join(ROOT, 'fabric-network', '.state')) && network('status');
  const t0 = Date.now();
  if (!wasUp && !network('up')) throw new Error('the Fabric network did not come up');
  console.log(
    wasUp
      ? 'using the running Fabric network'
      : `Fabric network up in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  const networkVars = networkEnv();
  const batch = {
    timeout: networkVars.FABRIC_NETWORK_BATCH_TIMEOUT ?? '200ms',
    count: Number(networkVars.FABRIC_NETWORK_MAX_MESSAGE_COUNT ?? 10),
  };
  console.log(`blocks cut after ${batch.timeout} or ${batch.count} transactions`);
  const ledger = new FabricLedger(fabricConfigFromEnv(networkVars));
  try {
    const load = new GrantLoad(ledger);
    const results: (PhaseResult & CpuPerTx)[] = [];
    for (const c of s.concurrencies) {
      await load.run(c, s.warmupSeconds);
      const result = await cpuPerTx(networkVars.FABRIC_NETWORK_DIR, () =>
        load.run(c, s.durationSeconds),
      );
      results.push(result);
      console.log(
        `  c=${c}: ${result.txPerSec} tx/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ` +
          `${result.meanBlockSize} tx/block, ${result.failures} failures`,
      );
    }
    console.log(
      '\nFabric ledger (2 orgs, 1 Raft orderer, native), consent.GrantConsent, closed loop',
    );
    console.table(
      results.map((r) => ({
        concurrency: r.concurrency,
        'tx/s': r.txPerSec,
        'p50 ms': r.p50Ms,
        'p99 ms': r.p99Ms,
        'tx/block': r.meanBlockSize,
        total: r.total,
        failures: r.failures,
        'net CPU ms/tx': r.networkCpuMsPerTx,
        'client CPU ms/tx': r.clientCpuMsPerTx,
        'tx/s bound, 2 cores': r.txPerSecBoundOn2Cores,
      })),
    );
    // The API's consent path (grants through Org1's GraphQL API), then the propagation to Org2.
    const env = networkVars;
    const org1 = await startInstance(orgFabricEnv(env, 1));
    const org2 = await startInstance(orgFabricEnv(env, 2)).catch(async (e) => {
      await stopInstance(org1);
      throw e;
    });
    const throughApi: (Awaited<ReturnType<typeof grantsThroughApi>> & CpuPerTx)[] = [];
    let propagation: PropagationResult | undefined;
    try {
      for (const c of s.concurrencies) {
        await grantsThroughApi(org1, c, s.warmupSeconds);
        const result = await cpuPerTx(networkVars.FABRIC_NETWORK_DIR, () =>
          grantsThroughApi(org1, c, s.durationSeconds),
        );
        throughApi.push(result);
        console.log(
          `  API c=${c}: ${result.txPerSec} grants/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.failures} failures`,
        );
      }
      if (s.rounds > 0) propagation = await measurePropagation(org1, org2, s.rounds);
    } finally {
      await Promise.all([stopInstance(org1), stopInstance(org2)]);
    }
    console.log("\ngrantConsent through Org1's GraphQL API on Fabric, closed loop");
    console.table(throughApi);
    if (propagation) {
      console.log(
        `\nPropagation Org1 → Org2 (${s.rounds} grants, ${s.rounds} revocations, one at a time)`,
      );
      console.table({
        'grant → enforced at Org2 (from commit)': propagation.grantEnforcedAtOrg2,
        'revoke → denied at Org2 (from commit)': propagation.revokeDeniedAtOrg2,
        'grant → enforced at Org2 (from request)': propagation.grantEnforcedFromRequest,
        'revoke → denied at Org2 (from request)': propagation.revokeDeniedFromRequest,
        'commit through Org1 API': propagation.commitThroughApi,
      });
      if (propagation.mismatches > 0) {
        console.error(`  ${propagation.mismatches} reads at Org2 disagreed`);
      }
    }
    const cpu = cpus();
    const out = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpu.length,
        cpuModel: cpu[0]?.model ?? 'unknown',
        node: process.version,
        // Other work shares the machine: its 1-minute load average at the end of the run.
        loadAverage1m: round(loadavg()[0]),
      },
      fabric: {
        version: '3.1.5',
        topology: 'Org1 and Org2 with one peer each, one Raft orderer, all on 127.0.0.1',
        endorsementPolicy: 'MAJORITY Endorsement (both orgs)',
        batchTimeout: batch.timeout,
        maxMessageCount: batch.count,
      },
      settings: {
        durationSeconds: s.durationSeconds,
        warmupSeconds: s.warmupSeconds,
        propagationRounds: s.rounds,
      },
      results,
      throughApi,
      propagation: propagation && {
        what:
          'Org1 and Org2 API instances, each with its own embedded PostgreSQL and peer identity; ' +
          'a grant (then its revocation) to an Org2 clinician through Org1 GraphQL, one at a time, ' +
          "until Org2's projector applied its event and a read at Org2 confirmed it. " +
          "'from commit' starts when Org1's mutation answered (committed); 'from request' when it was sent.",
        ...propagation,
      },
    };
    await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
    // The test settings' results are the main file; other batch settings each get their own.
    const file =
      batch.timeout === '200ms' && batch.count === 10
        ? RESULTS_FILE
        : RESULTS_FILE.replace(/\.json$/, `-batch${batch.count}-${batch.timeout}.json`);
    await writeFile(file, JSON.stringify(out, null, 2) + '\n');
    console.log(`results written to ${file}`);
    const failed = [...results, ...throughApi].some((r) => r.failures > 0);
    if (failed || propagation?.mismatches) process.exitCode = 1;
  } finally {
    await ledger.close();
    if (!wasUp) network('down');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
