// `npm run bench:soak`: ten minutes of mixed traffic against one server, to show that it
// neither fails nor grows. The real API runs in a child process (embedded PostgreSQL, started
// with --expose-gc so that its heap can be read after a full collection). First the read
// throughput is measured (a clinician paging a patient's records under a grant, closed loop);
// then an open loop sends a mix at a fixed share of it (default 80%):
//   reads    a clinician pages a random patient's records under a standing TREATMENT grant
//   writes   a patient creates an Observation
//   grants   a patient grants READ to a passing clinician
//   revokes  the patient revokes one of those grants
// Every response is checked (HTTP 200, no GraphQL errors). Per minute: requests, errors,
// p50/p99 overall and per kind, and the server's RSS and heap after a full GC. The run meets
// its targets with 0 errors, nothing shed (the loop never had to skip a request because too
// many were in flight) and RSS and heap growing < 10% from the end of the warm-up to the end.
// Results go to bench/results/soak.json.
//   options: --minutes 10 --warmup-minutes 2 --share 0.8 --rate N (skip the calibration)
//            --patients 20 --records 30 --calibrate 10
//            --profile  (CPU-profile the server during the soak; prints it, writes no results)
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../src/auth';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/config';
import { summariseProfileFile } from './lib/cpu-profile';
import { round, runLoad } from './lib/load';
import { RECORDS_QUERY, sampleResource } from './lib/sample-records';
import { ServerMemory, ServerProcess } from './lib/server-process';

const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'soak.json');
const MIX = { read: 0.8, write: 0.1, grant: 0.05, revoke: 0.05 } as const;
const TARGET_GROWTH = 0.1;
/** More requests in flight than this means the server cannot keep up with the rate. */
const MAX_IN_FLIGHT = 256;
const TICK_MS = 10;
const MEMORY_SAMPLE_MS = 5_000;
const CLINICIAN = 'soak-clinician';

type Kind = keyof typeof MIX;
const KINDS = Object.keys(MIX) as Kind[];

interface Settings {
  minutes: number;
  warmupMinutes: number;
  share: number;
  rate?: number;
  patients: number;
  records: number;
  calibrateSeconds: number;
  /** CPU-profile the server during the soak and print where its time went (no results file). */
  profile: boolean;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      'warmup-minutes': { type: 'string', default: '2' },
      share: { type: 'string', default: '0.8' },
      rate: { type: 'string' },
      patients: { type: 'string', default: '20' },
      records: { type: 'string', default: '30' },
      calibrate: { type: 'string', default: '10' },
      profile: { type: 'boolean', default: false },
    },
  });
  const num = (name: string, v: string, integer = true) => {
    const n = Number(v);
    if (!(n > 0) || (integer && !Number.isInteger(n))) {
      throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}`);
    }
    return n;
  };
  const s: Settings = {
    minutes: num('minutes', values.minutes),
    warmupMinutes: num('warmup-minutes', values['warmup-minutes']),
    share: num('share', values.share, false),
    rate: values.rate === undefined ? undefined : num('rate', values.rate, false),
    patients: num('patients', values.patients),
    records: num('records', values.records),
    calibrateSeconds: num('calibrate', values.calibrate),
    profile: values.profile,
  };
  if (s.warmupMinutes >= s.minutes) throw new Error('--warmup-minutes must be below --minutes');
  return s;
}

interface Outcome {
  ok: boolean;
  /** The error's code (or HTTP status) when not ok; never its message, which may hold data. */
  code?: string;
  data?: Record<string, unknown>;
}

// The load generator shares the machine with the server and its database: node:http with
// keep-alive costs it a fraction of what fetch does per request, leaving the cores to them.
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

async function call(url: string, query: string, variables: object, token: string) {
  const payload = Buffer.from(JSON.stringify({ query, variables }));
  const { status, text } = await new Promise<{ status: number; text: string }>(
    (resolveCall, rejectCall) => {
      const req = httpRequest(
        `${url}/graphql`,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': payload.length,
            authorization: `Bearer ${token}`,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolveCall({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
          res.on('error', rejectCall);
        },
      );
      req.on('error', rejectCall);
      req.end(payload);
    },
  );
  let body: { data?: Record<string, unknown>; errors?: { extensions?: { code?: string } }[] };
  try {
    body = JSON.parse(text);
  } catch {
    body = {};
  }
  if (status !== 200 || body.errors?.length || !body.data) {
    return {
      ok: false,
      code: body.errors?.[0]?.extensions?.code ?? `HTTP ${status}`,
    } satisfies Outcome;
  }
  return { ok: true, data: body.data } satisfies Outcome;
}

async function must<T>(url: string, query: string, variables: object, token: string) {
  const out = await call(url, query, variables, token);
  if (!out.ok) throw new Error(`set-up call failed: ${out.code}`);
  return out.data as T;
}

const CREATE = 'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }';
const GRANT = `mutation($to: ID!) { grantConsent(input: { granteeType: CLINICIAN, granteeId: $to,
  purpose: TREATMENT, actions: [READ] }) { id } }`;
const REVOKE = 'mutation($id: ID!) { revokeConsent(id: $id) { id status } }';

interface Patient {
  id: string;
  token: string;
}

/** Patients with records and a standing grant to the reading clinician. */
async function setUp(url: string, issuer: DevIssuer, s: Settings): Promise<Patient[]> {
  const started = Date.now();
  const patients: Patient[] = [];
  for (let p = 0; p < s.patients; p++) {
    const token = await issuer.sign({ sub: `soak-patient-${p}`, roles: ['PATIENT'], ttl: '4h' });
    const { registerPatient } = await must<{ registerPatient: { id: string } }>(
      url,
      'mutation { registerPatient(displayName: "Soak") { id } }',
      {},
      token,
    );
    patients.push({ id: registerPatient.id, token });
    await must(url, GRANT, { to: CLINICIAN }, token);
  }
  let next = 0;
  const total = s.patients * s.records;
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      await must(url, CREATE, { r: sampleResource(i) }, patients[i % s.patients].token);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  console.log(
    `set-up: ${s.patients} patients, ${total} records, ${s.patients} grants in ` +
      `${(Date.now() - started) / 1000} s`,
  );
  return patients;
}

/** Closed-loop read throughput: the clinician paging one patient's records. */
async function calibrate(url: string, patient: Patient, token: string, seconds: number) {
  const request = {
    url: `${url}/graphql`,
    body: JSON.stringify({ query: RECORDS_QUERY, variables: { p: patient.id } }),
    headers: { authorization: `Bearer ${token}` },
  };
  await runLoad(request, { connections: 10, seconds: 3 });
  const load = await runLoad(request, { connections: 10, seconds });
  if (load.non2xx || load.errors) throw new Error('calibration run had errors');
  return load.reqPerSec;
}

interface MinuteStats {
  minute: number;
  requests: number;
  errors: number;
  shed: number;
  p50Ms: number;
  p99Ms: number;
  byKind: Record<Kind, { requests: number; p99Ms: number }>;
  /** Median of the minute's 5-second RSS samples: one sample says more about the allocator. */
  rssMb: number;
  minRssMb: number;
  peakRssMb: number;
  /** After a full GC at the minute's end. */
  heapUsedMb: number;
}

class Minute {
  readonly latencies: Record<Kind, number[]> = { read: [], write: [], grant: [], revoke: [] };
  errors = 0;
  shed = 0;
  readonly rssSamples: number[] = [];
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)], 2);
}

function pickKind(x: number): Kind {
  let acc = 0;
  for (const k of KINDS) {
    acc += MIX[k];
    if (x < acc) return k;
  }
  return 'read';
}

async function soak(
  server: ServerProcess,
  patients: Patient[],
  clinicianToken: string,
  rate: number,
  s: Settings,
) {
  const url = server.url;
  const minutes: Minute[] = Array.from({ length: s.minutes }, () => new Minute());
  const memory: ServerMemory[] = [];
  const errorCodes = new Map<string, number>();
  const revocable: { patient: Patient; id: string }[] = [];
  let inFlight = 0;
  let issued = 0;
  let writes = 0;
  let churn = 0;
  const started = performance.now();
  const durationMs = s.minutes * 60_000;
  const minuteOf = (t: number) => Math.min(s.minutes - 1, Math.floor((t - started) / 60_000));

  const send = async (kind: Kind) => {
    const patient = patients[Math.floor(Math.random() * patients.length)];
    let op: Promise<Outcome>;
    const t0 = performance.now();
    inFlight++;
    if (kind === 'revoke' && revocable.length === 0) kind = 'grant';
    if (kind === 'read') op = call(url, RECORDS_QUERY, { p: patient.id }, clinicianToken);
    else if (kind === 'write')
      op = call(url, CREATE, { r: sampleResource(writes++) }, patient.token);
    else if (kind === 'grant') {
      op = call(url, GRANT, { to: `soak-churn-${churn++}` }, patient.token).then((out) => {
        const id = (out.data?.grantConsent as { id?: string } | undefined)?.id;
        if (id) revocable.push({ patient, id });
        return out;
      });
    } else {
      const { patient: owner, id } = revocable.shift()!;
      op = call(url, REVOKE, { id }, owner.token);
    }
    const out = await op.catch(() => ({ ok: false, code: 'network' }) as Outcome);
    inFlight--;
    const t1 = performance.now();
    const minute = minutes[minuteOf(t0)];
    minute.latencies[kind].push(t1 - t0);
    if (!out.ok) {
      minute.errors++;
      errorCodes.set(`${kind}: ${out.code}`, (errorCodes.get(`${kind}: ${out.code}`) ?? 0) + 1);
    }
  };

  // Memory: the server's own view after a full GC at every minute's end, RSS every 5 s.
  const rssSampler = setInterval(() => {
    minutes[minuteOf(performance.now())].rssSamples.push(server.rssMb());
  }, MEMORY_SAMPLE_MS);
  let memoryChain = Promise.resolve();
  const minuteTimer = setInterval(() => {
    memoryChain = memoryChain.then(async () => {
      const usage = await server.memory();
      memory.push(usage);
      const i = memory.length - 1;
      const m = minutes[i];
      const all = KINDS.flatMap((k) => m.latencies[k]);
      console.log(
        `minute ${i + 1}: ${all.length} requests, ${m.errors} errors, ${m.shed} shed, ` +
          `p99 ${percentile(all, 0.99)} ms, RSS (median) ${round(percentile(m.rssSamples, 0.5), 1)} ` +
          `MiB, heap after GC ${usage.heapUsedMb} MiB`,
      );
    });
  }, 60_000);

  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const elapsed = now - started;
      if (elapsed >= durationMs) {
        clearInterval(tick);
        done();
        return;
      }
      const due = Math.floor((elapsed / 1000) * rate);
      for (; issued < due; issued++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          minutes[minuteOf(now)].shed++;
          continue;
        }
        void send(pickKind(Math.random()));
      }
    }, TICK_MS);
  });
  clearInterval(rssSampler);
  // The last minute's requests finish before its memory is read.
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 50));
  clearInterval(minuteTimer);
  await memoryChain;
  while (memory.length < s.minutes) memory.push(await server.memory());

  const stats: MinuteStats[] = minutes.map((m, i) => {
    const all = KINDS.flatMap((k) => m.latencies[k]);
    return {
      minute: i + 1,
      requests: all.length,
      errors: m.errors,
      shed: m.shed,
      p50Ms: percentile(all, 0.5),
      p99Ms: percentile(all, 0.99),
      byKind: Object.fromEntries(
        KINDS.map((k) => [
          k,
          { requests: m.latencies[k].length, p99Ms: percentile(m.latencies[k], 0.99) },
        ]),
      ) as MinuteStats['byKind'],
      rssMb: round(percentile(m.rssSamples, 0.5), 1),
      minRssMb: round(Math.min(...m.rssSamples, Infinity), 1),
      peakRssMb: round(Math.max(...m.rssSamples, 0), 1),
      heapUsedMb: memory[i].heapUsedMb,
    };
  });
  return { stats, errorCodes: Object.fromEntries(errorCodes), gcBeforeHeap: memory[0].collected };
}

function growth(stats: MinuteStats[], warmupMinutes: number, key: 'rssMb' | 'heapUsedMb') {
  const from = stats[warmupMinutes - 1][key];
  const to = stats[stats.length - 1][key];
  return { fromMb: from, toMb: to, growth: round((to - from) / from, 3) };
}

async function main(): Promise<void> {
  const s = settings();
  const dataDir = await mkdtemp(join(tmpdir(), 'custodia-soak-'));
  try {
    const server = await ServerProcess.spawn(
      join(__dirname, 'servers', 'app-server.js'),
      { BENCH_DATA_DIR: dataDir },
      ['--expose-gc'],
    );
    try {
      const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
      const clinicianToken = await issuer.sign({
        sub: CLINICIAN,
        roles: ['CLINICIAN'],
        org: 'org1',
        ttl: '4h',
      });
      const patients = await setUp(server.url, issuer, s);
      const readThroughput =
        s.rate === undefined
          ? await calibrate(server.url, patients[0], clinicianToken, s.calibrateSeconds)
          : undefined;
      const rate = s.rate ?? round((readThroughput ?? 0) * s.share, 0);
      console.log(
        (readThroughput ? `read throughput ${readThroughput} req/s; ` : '') +
          `soaking at ${rate} req/s for ${s.minutes} min ` +
          `(${KINDS.map((k) => `${k} ${MIX[k] * 100}%`).join(', ')})`,
      );
      const profileFile = join(dataDir, 'soak.cpuprofile');
      if (s.profile) await server.startProfile();
      const { stats, errorCodes, gcBeforeHeap } = await soak(
        server,
        patients,
        clinicianToken,
        rate,
        s,
      );
      if (s.profile) {
        await server.stopProfile(profileFile);
        const requests = stats.reduce((n, m) => n + m.requests, 0);
        console.log(await summariseProfileFile(profileFile, requests));
        console.log('(profiled run: results file not written)');
        return;
      }
      const errors = stats.reduce((n, m) => n + m.errors, 0);
      const shed = stats.reduce((n, m) => n + m.shed, 0);
      const rss = growth(stats, s.warmupMinutes, 'rssMb');
      const heap = growth(stats, s.warmupMinutes, 'heapUsedMb');
      const meetsTarget =
        errors === 0 && shed === 0 && rss.growth < TARGET_GROWTH && heap.growth < TARGET_GROWTH;
      console.log(
        `\n${stats.reduce((n, m) => n + m.requests, 0)} requests, ${errors} errors, ${shed} shed; ` +
          `RSS ${rss.fromMb} → ${rss.toMb} MiB (${round(rss.growth * 100, 1)}%), ` +
          `heap ${heap.fromMb} → ${heap.toMb} MiB (${round(heap.growth * 100, 1)}%) ` +
          `after ${s.warmupMinutes} min warm-up: ${meetsTarget ? 'met' : 'NOT met'}`,
      );
      if (errors) console.log('errors by kind and code:', errorCodes);
      const results = {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
        settings: {
          minutes: s.minutes,
          warmupMinutes: s.warmupMinutes,
          share: s.share,
          patients: s.patients,
          recordsPerPatient: s.records,
          mix: MIX,
          readQuery: RECORDS_QUERY.replace(/\s+/g, ' '),
        },
        readThroughput,
        rate,
        errors,
        errorCodes,
        shed,
        rssGrowth: rss,
        heapGrowth: heap,
        target: { errors: 0, shed: 0, growthBelow: TARGET_GROWTH },
        meetsTarget,
        minutes: stats,
        notes:
          'Open loop at `rate` req/s (reads, writes, grants, revokes by `mix`). heapUsedMb is ' +
          `the server's own process.memoryUsage() at each minute's end` +
          (gcBeforeHeap ? ' right after a full GC' : ' (no GC first)') +
          '; rssMb/minRssMb/peakRssMb are the median/min/max of the 5-second RSS samples in ' +
          'the minute. Growth is from ' +
          'the end of the warm-up to the end of the run. The embedded PostgreSQL is separate ' +
          'processes and not counted.',
      };
      await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
      await writeFile(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');
      console.log(`written to ${RESULTS_FILE}`);
      if (!meetsTarget) process.exitCode = 1;
    } finally {
      agent.destroy();
      await server.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(`bench:soak failed: ${e.stack ?? e.message}`);
  process.exit(1);
});
