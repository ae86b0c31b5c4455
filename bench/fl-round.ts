// `npm run bench:fl-round`: the wall time of a federated round with 3 and with 10 in-process
// training nodes on the synthetic cohort, and where it goes: reading the consenting patients'
// records, fetching the global model ("transfer"), training, and submitting (the coordinator's
// checks, the wait for the access log to hold the examples' use, and, for the node whose update
// completes the quorum, the aggregation).
//
// Per cohort: a fresh embedded-mode server (its own data dir and embedded PostgreSQL, one
// in-process training node per organisation), `seedCohort` (timed apart), every patient
// granting RESEARCH/TRAIN to the study, then a study created and a run started over GraphQL
// as a researcher, exactly as test/federated-nodes.e2e-spec.ts does. A round's wall time runs
// from the coordinator's 'open' to its 'round' (close) event. The in-process nodes read at
// once, train one after another, and submit while the next one trains, so the phases overlap:
// their sums (Σ) can exceed the wall time, and "other" (wall − Σ) is then negative; the CPU
// profile (--profile) says where this process's time goes instead. The aggregation is
// estimated as the quorum node's submit time minus the median submit time of the other
// nodes (a submit without the fold). Results go to bench/results/fl-round.json.
//   options: --cohorts 3:1000,10:2000  (sites:patients) --rounds 5 --seed 42 --alpha 0.5
//            --epochs 3 --timeout 150  (seconds per run, from start to the last round)
//            --profile  (CPU-profile this process during the cached run's rounds 2+ and print where its
//                        main thread went, per round; the database is another process)
import 'reflect-metadata';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { DataSource } from 'typeorm';
import { DevIssuer } from '../src/auth';
import { DEV_AUDIENCE, DEV_ISSUER, loadConfig } from '../src/config';
import { ConsentService } from '../src/consent';
import { Coordinator } from '../src/federated/coordinator/coordinator.service';
import { initTensorFlow } from '../src/federated/model';
import { LocalTrainingNodes } from '../src/federated/node/local-nodes';
import { seedCohort } from '../src/federated/synthetic/seed';
import { RunningServer, startServer } from '../src/server';
import { CpuProfile, summariseProfile } from './lib/cpu-profile';
import { machineInfo } from './lib/machine';
import { machineBusySeconds } from './lib/server-process';

const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'fl-round.json');
const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];
const LABEL = '44054006';
/** Far above any round here, so no round is closed by its deadline instead of its quorum. */
const ROUND_DEADLINE_MS = 600_000;
/** Steady wall time per round with the example cache, by sites:patients (issue 11). */
const TARGET_MS: Record<string, number> = { '3:1000': 70, '10:2000': 150 };

interface Settings {
  cohorts: { sites: number; patients: number }[];
  rounds: number;
  seed: number;
  alpha: number;
  epochs: number;
  timeoutSeconds: number;
  profile: boolean;
}

interface UpdateEvent {
  runId: string;
  round: number;
  nodeId: string;
  readMs: number;
  transferMs: number;
  trainMs: number;
  submitMs: number;
  status: string;
  /** performance.now() when the event arrived (just after the submit returned). */
  at: number;
}

interface Phase {
  sumMs: number;
  meanMs: number;
}

interface RoundResult {
  round: number;
  status: string;
  wallMs: number;
  nodes: number;
  accepted: number;
  read: Phase;
  transfer: Phase;
  train: Phase;
  submit: Phase;
  /** The quorum node's submit minus the median of the other nodes' submits. */
  aggregationMs: number | null;
  quorumSubmitMs: number | null;
  /** Wall time not inside any node's read/transfer/train/submit. */
  otherMs: number;
  /** Parameters of the round's new global model. */
  parameters: number | null;
  examples: number;
  contributors: number | null;
  auc: number | null;
}

interface RunResult {
  runSeconds: number;
  status: string;
  /** Average cores busy during the run: this process (API, nodes, TF.js) and the machine. */
  cpu: { processCores: number; machineCores: number };
  rounds: RoundResult[];
  /** Means over the closed rounds; `steady` leaves out round 1 (warm-up). */
  mean: Summary;
  steady: Summary | null;
}

interface CohortResult {
  sites: number;
  patients: number;
  sitePatients: number[];
  serverStartSeconds: number;
  seedSeconds: number;
  consentSeconds: number;
  /** Every round reads and decrypts every record (the path before the example cache). */
  uncached: RunResult;
  /** Examples built once and rebuilt only where records changed. */
  cached: RunResult;
  /** Steady wall time per round, uncached ÷ cached. */
  speedup: number;
  /** The issue's target for a steady round with the cache, ms (null: none for this cohort). */
  targetMs: number | null;
}

type Summary = Pick<
  RoundResult,
  'wallMs' | 'otherMs' | 'aggregationMs' | 'examples' | 'read' | 'transfer' | 'train' | 'submit'
>;

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      cohorts: { type: 'string', default: '3:1000,10:2000' },
      rounds: { type: 'string', default: '5' },
      seed: { type: 'string', default: '42' },
      alpha: { type: 'string', default: '0.5' },
      epochs: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '150' },
      profile: { type: 'boolean', default: false },
    },
  });
  const positive = (name: string, v: string, integer = true) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new Error(`--${name} must be a positive ${integer ? 'whole ' : ''}number`);
    }
    return n;
  };
  const cohorts = values.cohorts.split(',').map((c) => {
    const [sites, patients] = c.split(':');
    if (patients === undefined) throw new Error('--cohorts is a list of sites:patients');
    return { sites: positive('cohorts', sites), patients: positive('cohorts', patients) };
  });
  return {
    cohorts,
    rounds: positive('rounds', values.rounds),
    seed: Number(values.seed),
    alpha: positive('alpha', values.alpha, false),
    epochs: positive('epochs', values.epochs),
    timeoutSeconds: positive('timeout', values.timeout, false),
    profile: values.profile,
  };
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const seconds = (since: number) => round((performance.now() - since) / 1000, 2);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function phase(values: number[]): Phase {
  const sum = values.reduce((a, b) => a + b, 0);
  return { sumMs: round(sum), meanMs: round(values.length ? sum / values.length : 0) };
}

async function graphql<T>(
  server: RunningServer,
  token: string,
  query: string,
  variables: Record<string, unknown>,
): Promise<T> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

/** One round's figures from its open/close times and its nodes' update events. */
function roundResult(
  n: number,
  opened: number,
  closed: { at: number; status: string } | undefined,
  updates: UpdateEvent[],
  facts: { parameters: number | null; examples: number; contributors: number | null },
  auc: number | null,
): RoundResult {
  const wallMs = closed ? closed.at - opened : NaN;
  // The quorum node: the one whose submit was under way when the round closed.
  const quorum = closed
    ? updates.find((u) => u.at - u.submitMs <= closed.at && closed.at <= u.at)
    : undefined;
  const others = updates.filter((u) => u !== quorum).map((u) => u.submitMs);
  const busy = updates.reduce((a, u) => a + u.readMs + u.transferMs + u.trainMs + u.submitMs, 0);
  return {
    round: n,
    status: closed?.status ?? 'OPEN',
    wallMs: round(wallMs),
    nodes: updates.length,
    accepted: updates.filter((u) => u.status === 'ACCEPTED').length,
    read: phase(updates.map((u) => u.readMs)),
    transfer: phase(updates.map((u) => u.transferMs)),
    train: phase(updates.map((u) => u.trainMs)),
    submit: phase(updates.map((u) => u.submitMs)),
    aggregationMs: quorum && others.length ? round(quorum.submitMs - median(others)) : null,
    quorumSubmitMs: quorum ? round(quorum.submitMs) : null,
    otherMs: round(wallMs - busy),
    ...facts,
    auc: auc === null ? null : round(auc, 3),
  };
}

function summarise(rounds: RoundResult[]): Summary {
  const mean = (f: (r: RoundResult) => number) =>
    round(rounds.reduce((a, r) => a + f(r), 0) / rounds.length);
  const meanPhase = (f: (r: RoundResult) => Phase): Phase => ({
    sumMs: mean((r) => f(r).sumMs),
    meanMs: mean((r) => f(r).meanMs),
  });
  const aggs = rounds.map((r) => r.aggregationMs).filter((a): a is number => a !== null);
  return {
    wallMs: mean((r) => r.wallMs),
    otherMs: mean((r) => r.otherMs),
    aggregationMs: aggs.length ? round(aggs.reduce((a, b) => a + b, 0) / aggs.length) : null,
    examples: mean((r) => r.examples),
    read: meanPhase((r) => r.read),
    transfer: meanPhase((r) => r.transfer),
    train: meanPhase((r) => r.train),
    submit: meanPhase((r) => r.submit),
  };
}

async function runCohort(
  s: Settings,
  cohort: { sites: number; patients: number },
): Promise<CohortResult> {
  const dataDir = await mkdtemp(join(tmpdir(), 'custodia-bench-fl-round-'));
  let server: RunningServer | undefined;
  try {
    const t0 = performance.now();
    server = await startServer(
      loadConfig({
        CUSTODIA_DATA_DIR: dataDir,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      }),
    );
    const serverStartSeconds = seconds(t0);
    const app = server.app;
    if (!app.get(LocalTrainingNodes).enabled) {
      throw new Error('the in-process training nodes are off (embedded ledger expected)');
    }

    const t1 = performance.now();
    const summary = await seedCohort(app, {
      patients: cohort.patients,
      sites: cohort.sites,
      seed: s.seed,
      alpha: s.alpha,
    });
    const seedSeconds = seconds(t1);
    const sitePatients = summary.organizations.map(
      (o) => summary.patients.filter((p) => p.organizationId === o.id).length,
    );

    const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
    const researcher = await issuer.sign({
      sub: 'bench-fl-researcher',
      roles: ['RESEARCHER'],
      ttl: '2h',
    });
    const studyId = (
      await graphql<{ createStudy: { id: string } }>(
        server,
        researcher,
        `mutation($f: [String!]!, $k: Int!, $e: Int!, $d: Int!) {
           createStudy(input: { title: "bench:fl-round", features: $f, label: "${LABEL}",
             minNodes: $k, localEpochs: $e, roundDeadlineMs: $d }) { id } }`,
        { f: FEATURES, k: cohort.sites, e: s.epochs, d: ROUND_DEADLINE_MS },
      )
    ).createStudy.id;

    const t2 = performance.now();
    const consents = app.get(ConsentService);
    for (const p of summary.patients) {
      await consents.grant(
        { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
        { granteeType: 'STUDY', granteeId: studyId, purpose: 'RESEARCH', actions: ['TRAIN'] },
      );
    }
    const consentSeconds = seconds(t2);

    const nodes = app.get(LocalTrainingNodes);
    const api = server;
    /** One training run; `cache` off reads and decrypts every record every round. */
    const train = async (cache: boolean, profile = false): Promise<RunResult> => {
      nodes.examples.cache = cache;
      // Every event is kept with its time; the run's id is only known once startTraining
      // answers, by which time round 1 may already be under way.
      const opens: { runId: string; round: number; at: number }[] = [];
      const closes: { runId: string; round: number; status: string; at: number }[] = [];
      const updates: UpdateEvent[] = [];
      const coordinator = app.get(Coordinator);
      const session = profile ? new Session() : undefined;
      // The profile covers the steady rounds (2+), which the targets are about: round 1
      // fills the example cache.
      let profiling: Promise<unknown> | undefined;
      const onOpen = (e: { runId: string; round: number }) => {
        opens.push({ ...e, at: performance.now() });
        if (session && e.round === 2 && !profiling) {
          session.connect();
          profiling = session.post('Profiler.enable').then(() => session.post('Profiler.start'));
        }
      };
      // The quorum node reports its update only after the round it completed has closed.
      let lastUpdate: () => void = () => undefined;
      const onUpdate = (e: Omit<UpdateEvent, 'at'>) => {
        updates.push({ ...e, at: performance.now() });
        if (e.round >= s.rounds) lastUpdate();
      };
      let finish: (status: string) => void = () => undefined;
      const finished = new Promise<string>((r) => (finish = r));
      const onRound = (e: { runId: string; round: number; status: string }) => {
        closes.push({ ...e, at: performance.now() });
        if (e.round >= s.rounds || e.status !== 'CLOSED') finish(e.status);
      };
      coordinator.events.on('open', onOpen);
      coordinator.events.on('round', onRound);
      nodes.events.on('update', onUpdate);

      const cpu0 = process.cpuUsage();
      const busy0 = machineBusySeconds();
      const t3 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      let runId: string;
      let status: string;
      try {
        runId = (
          await graphql<{ startTraining: { id: string } }>(
            api,
            researcher,
            'mutation($s: ID!, $r: Int!) { startTraining(studyId: $s, rounds: $r) { id } }',
            { s: studyId, r: s.rounds },
          )
        ).startTraining.id;
        const timeout = new Promise<string>((r) => {
          timer = setTimeout(() => r('TIMEOUT'), s.timeoutSeconds * 1000);
        });
        status = await Promise.race([finished, timeout]);
        if (status === 'CLOSED') {
          const final = closes.find((c) => c.round >= s.rounds)!;
          const reported = () => updates.some((u) => u.round >= s.rounds && u.at >= final.at);
          if (!reported()) {
            await Promise.race([
              new Promise<void>((r) => (lastUpdate = () => reported() && r())),
              timeout,
            ]);
          }
        }
      } finally {
        clearTimeout(timer);
        coordinator.events.off('open', onOpen);
        coordinator.events.off('round', onRound);
        nodes.events.off('update', onUpdate);
      }
      const runSeconds = seconds(t3);
      const cpu = process.cpuUsage(cpu0);
      if (session && profiling) {
        await profiling;
        const { profile: taken } = await session.post('Profiler.stop');
        session.disconnect();
        const saved = join(tmpdir(), `fl-round-k${cohort.sites}.cpuprofile`);
        await writeFile(saved, JSON.stringify(taken));
        console.log(
          `\nK=${cohort.sites} cached run (profile saved to ${saved}), this process (per round: rounds 2-${s.rounds}):\n` +
            summariseProfile(taken as unknown as CpuProfile, s.rounds - 1, 25),
        );
      }
      const processCores = round((cpu.user + cpu.system) / 1e6 / runSeconds, 2);
      const machineCores = round((machineBusySeconds() - busy0) / runSeconds, 2);

      // What each round produced: the new model's size, and the examples trained on.
      const db = app.get(DataSource);
      const sizes: { round: number; parameters: number }[] = await db.query(
        `SELECT round, octet_length(weights) / 4 AS parameters FROM model_versions
         WHERE run_id = $1 AND round > 0`,
        [runId],
      );
      const { trainingRun } = await graphql<{
        trainingRun: {
          status: string;
          metrics: { round: number; numContributors: number; auc: number | null }[];
          updates: { round: number; numExamples: number; status: string }[];
        };
      }>(
        api,
        researcher,
        `
          query ($id: ID!) {
            trainingRun(id: $id) {
              status
              metrics {
                round
                numContributors
                auc
              }
              updates {
                round
                numExamples
                status
              }
            }
          }
        `,
        { id: runId },
      );

      const rounds: RoundResult[] = [];
      for (const open of opens.filter((o) => o.runId === runId)) {
        const n = open.round;
        const metric = trainingRun.metrics.find((m) => m.round === n);
        const size = sizes.find((v) => Number(v.round) === n);
        rounds.push(
          roundResult(
            n,
            open.at,
            closes.find((c) => c.runId === runId && c.round === n),
            updates.filter((u) => u.runId === runId && u.round === n),
            {
              parameters: size ? Number(size.parameters) : null,
              examples: trainingRun.updates
                .filter((u) => u.round === n && u.status === 'ACCEPTED')
                .reduce((a, u) => a + u.numExamples, 0),
              contributors: metric?.numContributors ?? null,
            },
            metric?.auc ?? null,
          ),
        );
      }
      const closed = rounds.filter((r) => r.status === 'CLOSED');
      return {
        runSeconds,
        status: status === 'TIMEOUT' ? 'TIMEOUT' : trainingRun.status,
        cpu: { processCores, machineCores },
        rounds,
        mean: summarise(closed.length ? closed : rounds),
        steady: closed.length > 1 ? summarise(closed.filter((r) => r.round > 1)) : null,
      };
    };
    // The path without the example cache first, then with it, on the same server and cohort.
    const uncached = await train(false);
    const cached = await train(true, s.profile);
    const wall = (r: RunResult) => (r.steady ?? r.mean).wallMs;
    return {
      ...cohort,
      sitePatients,
      serverStartSeconds,
      seedSeconds,
      consentSeconds,
      uncached,
      cached,
      speedup: round(wall(uncached) / wall(cached), 2),
      targetMs: TARGET_MS[`${cohort.sites}:${cohort.patients}`] ?? null,
    };
  } finally {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function printTable(results: CohortResult[]): void {
  const header = [
    'K',
    'round',
    'wall ms',
    'read Σ',
    'transfer Σ',
    'train Σ',
    'submit Σ',
    'aggregation',
    'other',
    'train/node',
    'params',
    'examples',
  ];
  const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '–' : String(v));
  const rows: string[][] = [];
  for (const c of results) {
    for (const [name, run] of [
      ['uncached', c.uncached],
      ['cached', c.cached],
    ] as const) {
      const line = (label: string, r: Summary, extra: RoundResult | null) =>
        rows.push([
          `${c.sites} ${name}`,
          label,
          fmt(r.wallMs),
          fmt(r.read.sumMs),
          fmt(r.transfer.sumMs),
          fmt(r.train.sumMs),
          fmt(r.submit.sumMs),
          fmt(r.aggregationMs),
          fmt(r.otherMs),
          fmt(r.train.meanMs),
          fmt(extra?.parameters),
          fmt(r.examples),
        ]);
      for (const r of run.rounds) line(String(r.round), r, r);
      line('mean', run.mean, null);
      if (run.steady) line('mean 2+', run.steady, null);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const show = (cells: string[]) =>
    console.log(
      cells.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  '),
    );
  show(header);
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  let last = '';
  for (const r of rows) {
    if (last && r[0] !== last) console.log('');
    last = r[0];
    show(r);
  }
}

function share(c: CohortResult, run: RunResult, name: string): string {
  const m = run.steady ?? run.mean;
  const pct = (v: number | null) => `${v === null ? '–' : round((100 * v) / m.wallMs)}%`;
  const submitOnly = m.submit.sumMs - (m.aggregationMs ?? 0);
  return (
    `K=${c.sites} ${name}: read ${pct(m.read.sumMs)}, transfer ${pct(m.transfer.sumMs)}, ` +
    `train ${pct(m.train.sumMs)}, submit ${pct(submitOnly)} + aggregation ` +
    `${pct(m.aggregationMs)}, other ${pct(m.otherMs)} of ${m.wallMs} ms per round` +
    (run.steady ? ' (rounds 2+)' : '')
  );
}

async function main(): Promise<void> {
  const s = settings();
  const { backend } = await initTensorFlow();
  console.log(
    `bench:fl-round: ${s.cohorts.map((c) => `${c.sites} sites/${c.patients} patients`).join(', ')}; ` +
      `${s.rounds} rounds, ${s.epochs} local epochs, seed ${s.seed}, α ${s.alpha}, TF.js ${backend}`,
  );
  const results: CohortResult[] = [];
  for (const cohort of s.cohorts) {
    const r = await runCohort(s, cohort);
    results.push(r);
    console.log(
      `  K=${r.sites}: server ${r.serverStartSeconds} s, seed ${r.patients} patients ` +
        `${r.seedSeconds} s, consent ${r.consentSeconds} s; patients per site ` +
        `${r.sitePatients.join(',')}; runs ${r.uncached.runSeconds} s uncached ` +
        `(${r.uncached.status}), ${r.cached.runSeconds} s cached (${r.cached.status}); ` +
        `cores busy (cached run): this process ${r.cached.cpu.processCores}, machine ` +
        `${r.cached.cpu.machineCores}`,
    );
  }
  console.log(
    '\nper round, ms (Σ = summed over the nodes, whose reads and submits overlap the ' +
      'training; submit Σ includes the aggregation):',
  );
  printTable(results);
  console.log('\nwhere the time goes:');
  for (const r of results) {
    console.log(`  ${share(r, r.uncached, 'uncached')}`);
    console.log(`  ${share(r, r.cached, 'cached')}`);
  }
  console.log('\nwith the example cache (steady rounds):');
  for (const r of results) {
    const ms = (r.cached.steady ?? r.cached.mean).wallMs;
    const verdict =
      r.targetMs === null ? '' : ms <= r.targetMs ? ' — target met' : ' — target NOT met';
    console.log(
      `  K=${r.sites}, ${r.patients} patients: ${ms} ms per round, ${r.speedup}× faster` +
        (r.targetMs === null ? '' : ` (target ≤ ${r.targetMs} ms)`) +
        verdict,
    );
  }

  const report = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    settings: {
      ...s,
      features: FEATURES,
      label: LABEL,
      model: 'LOGISTIC',
      strategy: 'FEDAVG',
      roundDeadlineMs: ROUND_DEADLINE_MS,
      tensorflowBackend: backend,
    },
    notes: [
      'wallMs: coordinator open → close of the round',
      'read/transfer/train/submit: from LocalTrainingNodes update events; sumMs over nodes',
      'train: training and signing the update',
      "submit: the coordinator's checks, which wait for the log to hold the examples' use before storing, and any aggregation",
      'aggregationMs: quorum node submitMs − median submitMs of the other nodes',
      'otherMs: wallMs − Σ(read+transfer+train+submit) over the nodes',
      'uncached, then cached: two runs of the same study on the same server and cohort',
    ],
    results,
  };
  await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
  await writeFile(RESULTS_FILE, JSON.stringify(report, null, 2) + '\n');
  console.log(`\nwritten to ${RESULTS_FILE}`);
  const failed = results.flatMap((r) =>
    [r.uncached, r.cached]
      .filter((x) => x.status !== 'COMPLETED')
      .map((x) => `K=${r.sites} ${x.status}`),
  );
  if (failed.length) throw new Error(`runs not completed: ${failed.join(', ')}`);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(`bench:fl-round failed: ${e.stack ?? e.message}`);
    process.exit(1);
  },
);
