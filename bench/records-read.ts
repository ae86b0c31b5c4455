// `npm run bench:records`: throughput and latency of `records(patientId, first: 20)` read by
// the patient over 1,000 encrypted records, the same page searched by a LOINC code (which must
// cost at most 1.2× the plain page), by a clinician under the patient's grant, and by
// that clinician across 1,000 patients in turn (each with a page of records and a grant: no
// one hot patient, so caches and database pages are spread), against a baseline of the same Nest + Apollo stack answering a same-shaped page from memory. Both servers run as child processes, one
// after the other, so each one's peak RSS is its own. Results go to
// bench/results/records-read.json.
//   options: --connections 10 --warmup 5 --duration 12 --records 1000
//            --mix-patients 1000 --mix-records 20  (--mix-patients 0 skips the mix)
//            --profile  (CPU-profile each server during the measured run; writes no results)
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../src/auth';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/config';
import { integerOption } from './lib/args';
import { summariseProfileFile } from './lib/cpu-profile';
import { machineInfo } from './lib/machine';
import { GraphQLRequest, LoadResult, round, runLoad } from './lib/load';
import { PAGE_SIZE, RECORDS_QUERY, SEARCH_QUERY, sampleResource } from './lib/sample-records';
import { machineBusySeconds, ServerProcess } from './lib/server-process';

const TARGET_RATIO = 0.7;
const TARGET_P99_MS = 25;
/** Clinician-under-grant latency over patient-self latency (the consent check's cost). */
const TARGET_CLINICIAN_RATIO = 1.1;
/** A page searched by code over a plain page, p50 latency (issue 13). */
const TARGET_SEARCH_RATIO = 1.2;
const SEED_CONCURRENCY = 8;
/** Patients of the mix set up at once (each registers, grants, then writes its records). */
const MIX_SEED_CONCURRENCY = 16;
const OTHER_LOAD_WARNING = 0.2;
const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'records-read.json');

interface Settings {
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  records: number;
  mixPatients: number;
  mixRecords: number;
  profileDir?: string;
}

interface Measurement extends LoadResult {
  peakRssMb: number;
  responseBytes: number;
  /** Average cores busy during the measured run, per party. */
  cpu: {
    serverCores: number;
    databaseCores: number;
    loadGeneratorCores: number;
    otherCores: number;
    /** CPU time per response, of the server process and of the database: steadier than req/s. */
    serverMsPerRequest: number;
    databaseMsPerRequest: number;
  };
}

function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '5' },
      duration: { type: 'string', default: '12' },
      records: { type: 'string', default: '1000' },
      'mix-patients': { type: 'string', default: '1000' },
      'mix-records': { type: 'string', default: '20' },
      profile: { type: 'boolean', default: false },
    },
  });
  return {
    connections: integerOption('connections', values.connections),
    warmupSeconds: integerOption('warmup', values.warmup),
    durationSeconds: integerOption('duration', values.duration),
    records: integerOption('records', values.records),
    mixPatients: integerOption('mix-patients', values['mix-patients'], 0),
    mixRecords: integerOption('mix-records', values['mix-records'], PAGE_SIZE),
    profileDir: values.profile
      ? join(tmpdir(), `custodia-bench-profiles-${Date.now()}`)
      : undefined,
  };
}

async function gql<T>(url: string, query: string, variables: object, token?: string) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  const body = JSON.parse(text) as { data?: T; errors?: { message: string }[] };
  if (!res.ok || body.errors?.length || !body.data) {
    throw new Error(`GraphQL call failed (${res.status}): ${text.slice(0, 500)}`);
  }
  return { data: body.data, bytes: Buffer.byteLength(text) };
}

/** Warm-up, then the measured run (optionally profiled); peak RSS covers both. */
async function measure(
  name: string,
  server: ServerProcess,
  patientIds: string | string[],
  s: Settings,
  token?: string,
  query = RECORDS_QUERY,
): Promise<Measurement> {
  const ids = typeof patientIds === 'string' ? [patientIds] : patientIds;
  const variables = { p: ids[0] };
  // The page must be complete before its speed means anything.
  const check = await gql<{ records: { items: unknown[] } }>(server.url, query, variables, token);
  if (check.data.records.items.length !== PAGE_SIZE) {
    throw new Error(`${name}: expected ${PAGE_SIZE} items, got ${check.data.records.items.length}`);
  }
  const request: GraphQLRequest = {
    url: `${server.url}/graphql`,
    body: JSON.stringify({ query, variables }),
    headers: token ? { authorization: `Bearer ${token}` } : {},
    bodies:
      ids.length > 1 ? ids.map((p) => JSON.stringify({ query, variables: { p } })) : undefined,
  };
  const rssReset = server.resetPeakRss();
  let sampledPeak = server.rssMb();
  const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, server.rssMb())), 100);
  process.stdout.write(`${name}: warm-up ${s.warmupSeconds} s… `);
  await runLoad(request, { connections: s.connections, seconds: s.warmupSeconds });
  process.stdout.write(`measuring ${s.durationSeconds} s… `);
  if (s.profileDir) await server.startProfile();
  const before = { ...server.cpuSeconds(), self: ownCpuSeconds(), machine: machineBusySeconds() };
  const load = await runLoad(request, { connections: s.connections, seconds: s.durationSeconds });
  const after = { ...server.cpuSeconds(), self: ownCpuSeconds(), machine: machineBusySeconds() };
  if (s.profileDir) await server.stopProfile(join(s.profileDir, `${name}.cpuprofile`));
  const cores = (k: keyof typeof before) => (after[k] - before[k]) / load.seconds;
  const cpu = {
    serverCores: round(cores('server'), 2),
    databaseCores: round(cores('descendants'), 2),
    loadGeneratorCores: round(cores('self'), 2),
    // Anything else running on the machine skews the result; it is reported, not hidden.
    otherCores: round(
      Math.max(0, cores('machine') - cores('server') - cores('descendants') - cores('self')),
      2,
    ),
    serverMsPerRequest: round(((after.server - before.server) * 1000) / load.requests, 2),
    databaseMsPerRequest: round(
      ((after.descendants - before.descendants) * 1000) / load.requests,
      2,
    ),
  };
  clearInterval(sampler);
  // Let the requests autocannon abandoned at the deadline finish before the server stops.
  await new Promise((r) => setTimeout(r, 300));
  const peakRssMb = rssReset ? Math.max(server.peakRssMb(), sampledPeak) : sampledPeak;
  console.log(
    `${load.reqPerSec} req/s (server ${cpu.serverCores} cores busy, ` +
      `${cpu.serverMsPerRequest} ms CPU per request)`,
  );
  if (cpu.otherCores > OTHER_LOAD_WARNING) {
    console.warn(
      `  warning: other processes used ${cpu.otherCores} cores during the run; the figures are skewed`,
    );
  }
  if (load.non2xx || load.errors) {
    throw new Error(`${name}: ${load.non2xx} non-2xx responses and ${load.errors} errors`);
  }
  return { ...load, peakRssMb: round(peakRssMb, 1), responseBytes: check.bytes, cpu };
}

async function runBaseline(s: Settings): Promise<Measurement> {
  const server = await ServerProcess.spawn(join(__dirname, 'servers', 'baseline-server.js'));
  try {
    return await measure('baseline', server, '00000000-0000-4000-8000-000000000000', s);
  } finally {
    await server.stop();
  }
}

async function runApp(s: Settings): Promise<{
  patient: Measurement;
  search: Measurement;
  clinician: Measurement;
  mix?: Measurement;
}> {
  const dataDir = await mkdtemp(join(tmpdir(), 'custodia-bench-'));
  try {
    const started = Date.now();
    const server = await ServerProcess.spawn(join(__dirname, 'servers', 'app-server.js'), {
      BENCH_DATA_DIR: dataDir,
    });
    try {
      console.log(`app: started with embedded PostgreSQL in ${(Date.now() - started) / 1000} s`);
      const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
      const token = await issuer.sign({ sub: 'bench-patient', roles: ['PATIENT'], ttl: '2h' });
      const { data } = await gql<{ registerPatient: { id: string } }>(
        server.url,
        'mutation { registerPatient(displayName: "Bench") { id } }',
        {},
        token,
      );
      const patientId = data.registerPatient.id;
      await seed(server.url, token, s.records);
      const patient = await measure('app', server, patientId, s, token);
      const search = await measure('search', server, patientId, s, token, SEARCH_QUERY);
      // The same page read by a clinician under the patient's treatment grant.
      await gql(
        server.url,
        `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "bench-clinician",
           purpose: TREATMENT, actions: [READ], includeRestricted: true }) { id } }`,
        {},
        token,
      );
      const clinicianToken = await issuer.sign({
        sub: 'bench-clinician',
        roles: ['CLINICIAN'],
        org: 'org1',
        ttl: '2h',
      });
      const clinician = await measure('clinician', server, patientId, s, clinicianToken);
      if (!s.mixPatients) return { patient, search, clinician };
      // The same clinician across many patients, each of whom granted them READ.
      const mixIds = await seedMix(server.url, issuer, s);
      const mix = await measure('mix', server, mixIds, s, clinicianToken);
      return { patient, search, clinician, mix };
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function seed(url: string, token: string, count: number): Promise<void> {
  const started = Date.now();
  const mutation = 'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }';
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      await gql(url, mutation, { r: sampleResource(i) }, token);
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  console.log(`app: ${count} records created in ${(Date.now() - started) / 1000} s`);
}

/** Patients for the mix: each registers, grants the bench clinician READ, writes records. */
async function seedMix(url: string, issuer: DevIssuer, s: Settings): Promise<string[]> {
  const started = Date.now();
  const ids: string[] = new Array<string>(s.mixPatients);
  let next = 0;
  const worker = async () => {
    for (let p = next++; p < s.mixPatients; p = next++) {
      const token = await issuer.sign({ sub: `bench-mix-${p}`, roles: ['PATIENT'], ttl: '2h' });
      const { data } = await gql<{ registerPatient: { id: string } }>(
        url,
        'mutation { registerPatient(displayName: "Bench") { id } }',
        {},
        token,
      );
      await gql(
        url,
        `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "bench-clinician",
           purpose: TREATMENT, actions: [READ], includeRestricted: true }) { id } }`,
        {},
        token,
      );
      const mutation = 'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }';
      for (let i = 0; i < s.mixRecords; i++) {
        await gql(url, mutation, { r: sampleResource(p * s.mixRecords + i) }, token);
      }
      ids[p] = data.registerPatient.id;
    }
  };
  await Promise.all(Array.from({ length: MIX_SEED_CONCURRENCY }, worker));
  console.log(
    `mix: ${s.mixPatients} patients with ${s.mixRecords} records and a grant each, set up in ` +
      `${(Date.now() - started) / 1000} s`,
  );
  return ids;
}

function summary(m: Measurement) {
  const { reqPerSec, p50Ms, p99Ms, peakRssMb, requests, responseBytes, cpu } = m;
  return { reqPerSec, p50Ms, p99Ms, peakRssMb, requests, responseBytes, cpu };
}

function printTable(rows: (string | number)[][]): void {
  console.log();
  for (const [first, ...rest] of rows) {
    console.log(String(first).padEnd(10) + rest.map((c) => String(c).padStart(14)).join(''));
  }
}

async function main(): Promise<void> {
  const s = settings();
  if (s.profileDir) await mkdir(s.profileDir, { recursive: true });
  const baseline = await runBaseline(s);
  const { patient: app, search, clinician, mix } = await runApp(s);
  const ratio = round(app.reqPerSec / baseline.reqPerSec, 3);
  const meetsTarget = ratio >= TARGET_RATIO && app.p99Ms <= TARGET_P99_MS;
  const clinicianRatio = round(clinician.p50Ms / app.p50Ms, 3);
  const clinicianMeetsTarget = clinicianRatio <= TARGET_CLINICIAN_RATIO;
  const mixRatio = mix ? round(mix.reqPerSec / baseline.reqPerSec, 3) : undefined;
  const searchRatio = round(search.p50Ms / app.p50Ms, 3);
  const searchMeetsTarget = searchRatio <= TARGET_SEARCH_RATIO;

  printTable([
    ['', 'req/s', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'server cores', 'db cores', 'server ms/req'],
    ...(
      [
        ['baseline', baseline],
        ['app', app],
        ['search', search],
        ['clinician', clinician],
        ...(mix ? ([['mix', mix]] as const) : []),
      ] as const
    ).map(([name, m]) => [
      name,
      m.reqPerSec,
      m.p50Ms,
      m.p99Ms,
      m.peakRssMb,
      m.cpu.serverCores,
      m.cpu.databaseCores,
      m.cpu.serverMsPerRequest,
    ]),
  ]);
  console.log(
    `\nratio app/baseline ${ratio} (target ≥ ${TARGET_RATIO} with app p99 ≤ ${TARGET_P99_MS} ms): ` +
      (meetsTarget ? 'met' : 'NOT met'),
  );
  if (mix) {
    console.log(
      `mix across ${s.mixPatients} patients (clinician under grants): ratio to baseline ${mixRatio}`,
    );
  }
  console.log(
    `search by code ÷ plain page, p50 latency ${searchRatio} ` +
      `(target ≤ ${TARGET_SEARCH_RATIO}): ${searchMeetsTarget ? 'met' : 'NOT met'}`,
  );
  console.log(
    `clinician under grant ÷ patient self, p50 latency ${clinicianRatio} ` +
      `(target ≤ ${TARGET_CLINICIAN_RATIO}): ${clinicianMeetsTarget ? 'met' : 'NOT met'}`,
  );

  if (s.profileDir) {
    for (const [name, m] of [
      ['baseline', baseline],
      ['app', app],
      ['search', search],
      ['clinician', clinician],
      ...(mix ? ([['mix', mix]] as const) : []),
    ] as const) {
      const file = join(s.profileDir, `${name}.cpuprofile`);
      console.log(`\n== ${name}: CPU profile of the measured run (${file}) ==`);
      console.log(await summariseProfileFile(file, m.requests));
    }
    console.log('\n(profiled run: results file not written)');
    return;
  }

  const results = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    settings: {
      records: s.records,
      mixPatients: s.mixPatients,
      mixRecordsPerPatient: s.mixRecords,
      connections: s.connections,
      pipelining: 1,
      warmupSeconds: s.warmupSeconds,
      durationSeconds: s.durationSeconds,
      query: RECORDS_QUERY.replace(/\s+/g, ' '),
      searchQuery: SEARCH_QUERY.replace(/\s+/g, ' '),
    },
    app: summary(app),
    search: summary(search),
    clinician: summary(clinician),
    mix: mix ? summary(mix) : null,
    baseline: summary(baseline),
    ratio,
    target: TARGET_RATIO,
    targetP99Ms: TARGET_P99_MS,
    meetsTarget,
    clinicianToPatientLatency: clinicianRatio,
    clinicianTarget: TARGET_CLINICIAN_RATIO,
    clinicianMeetsTarget,
    searchToPageLatency: searchRatio,
    searchTarget: TARGET_SEARCH_RATIO,
    searchMeetsTarget,
    mixRatio: mixRatio ?? null,
    notes:
      'req/s = responses / measured seconds; p50/p99 from every response; peak RSS = VmHWM of ' +
      'the Node server process over warm-up and measured run (the embedded PostgreSQL is ' +
      'separate processes: see cpu.databaseCores). Each server runs alone in its own child ' +
      'process; cpu.otherCores > 0.2 means something else on the machine skewed the run. ' +
      "`search`: the patient's page searched by a LOINC code (a sixth of the records hold it). " +
      '`mix`: the clinician reads the first page of each of `mixPatients` patients in turn ' +
      '(each granted READ); cpu.serverMsPerRequest is the server process CPU per response.',
  };
  await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
  await writeFile(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');
  console.log(`written to ${RESULTS_FILE}`);
}

main().catch((e: Error) => {
  console.error(`bench:records failed: ${e.stack ?? e.message}`);
  process.exit(1);
});
