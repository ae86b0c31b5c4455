// `npm run bench:cost`: what one request of each kind of the soak's mix costs the server in
// CPU time, measured as the CPU the server process (and, apart, its embedded PostgreSQL)
// spent over a fixed number of requests sent by a closed loop. CPU time per request holds
// far better than throughput on a machine others are using, so this is the figure to compare
// before and after a change. Kinds, as bench:soak sends them:
//   read     a clinician pages a patient's records under a standing TREATMENT grant
//   write    a patient creates an Observation
//   grant    a patient grants READ to a passing clinician
//   revoke   the patient revokes one of those grants
// Results go to bench/results/request-cost.json.
//   options: --requests 400 --warmup 100 --connections 8 --patients 20 --records 30
//            --profile  (CPU-profile each kind's measured requests; prints them, writes no results)
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../src/auth';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/config';
import { integerOption } from './lib/args';
import { summariseProfileFile } from './lib/cpu-profile';
import { machineInfo } from './lib/machine';
import { round } from './lib/load';
import { RECORDS_QUERY, sampleResource } from './lib/sample-records';
import { machineBusySeconds, ServerProcess } from './lib/server-process';

const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'request-cost.json');
const CLINICIAN = 'cost-clinician';
const CREATE = 'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }';
const GRANT = `mutation($to: ID!) { grantConsent(input: { granteeType: CLINICIAN, granteeId: $to,
  purpose: TREATMENT, actions: [READ] }) { id } }`;
const REVOKE = 'mutation($id: ID!) { revokeConsent(id: $id) { id status } }';
/** The soak's mix, to weigh the kinds into the CPU cost of one mixed request. */
const MIX = { read: 0.8, write: 0.1, grant: 0.05, revoke: 0.05 } as const;
type Kind = keyof typeof MIX;

interface Settings {
  requests: number;
  warmup: number;
  connections: number;
  patients: number;
  records: number;
  profileDir?: string;
}

function settings(): Settings {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '400' },
      warmup: { type: 'string', default: '100' },
      connections: { type: 'string', default: '8' },
      patients: { type: 'string', default: '20' },
      records: { type: 'string', default: '30' },
      profile: { type: 'boolean', default: false },
    },
  });
  return {
    requests: integerOption('requests', values.requests),
    warmup: integerOption('warmup', values.warmup),
    connections: integerOption('connections', values.connections),
    patients: integerOption('patients', values.patients),
    records: integerOption('records', values.records),
    profileDir: values.profile ? join(tmpdir(), `custodia-cost-profiles-${Date.now()}`) : undefined,
  };
}

async function call<T>(url: string, query: string, variables: object, token: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  const body = JSON.parse(text) as { data?: T; errors?: unknown[] };
  if (res.status !== 200 || body.errors?.length || !body.data) {
    throw new Error(`GraphQL call failed (${res.status}): ${text.slice(0, 300)}`);
  }
  return body.data;
}

interface Patient {
  id: string;
  token: string;
}

/** `count` calls of `op(i)` by `connections` workers, back to back. */
async function closedLoop(count: number, connections: number, op: (i: number) => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const t0 = performance.now();
      await op(i);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  return latencies.sort((a, b) => a - b);
}

interface Cost {
  requests: number;
  /** Server process CPU (user + system) per request. */
  serverCpuMs: number;
  /** The embedded PostgreSQL's CPU per request. */
  databaseCpuMs: number;
  p50Ms: number;
  /** Cores used by other processes meanwhile: above ~0.2 the latencies are skewed. */
  otherCores: number;
}

async function measure(
  name: Kind,
  server: ServerProcess,
  s: Settings,
  op: (i: number) => Promise<void>,
): Promise<Cost> {
  process.stdout.write(`${name}: warm-up ${s.warmup}… `);
  await closedLoop(s.warmup, s.connections, (i) => op(i));
  process.stdout.write(`measuring ${s.requests}… `);
  if (s.profileDir) await server.startProfile();
  const t0 = performance.now();
  const before = { ...server.cpuSeconds(), machine: machineBusySeconds() };
  const latencies = await closedLoop(s.requests, s.connections, (i) => op(s.warmup + i));
  const after = { ...server.cpuSeconds(), machine: machineBusySeconds() };
  const seconds = (performance.now() - t0) / 1000;
  if (s.profileDir) await server.stopProfile(join(s.profileDir, `${name}.cpuprofile`));
  const ms = (k: 'server' | 'descendants') =>
    round(((after[k] - before[k]) * 1000) / s.requests, 2);
  const cost: Cost = {
    requests: s.requests,
    serverCpuMs: ms('server'),
    databaseCpuMs: ms('descendants'),
    p50Ms: round(latencies[Math.floor(latencies.length / 2)], 2),
    otherCores: round(
      Math.max(
        0,
        (after.machine - before.machine - (after.server - before.server)) / seconds -
          (after.descendants - before.descendants) / seconds,
      ),
      2,
    ),
  };
  console.log(`server ${cost.serverCpuMs} ms CPU, database ${cost.databaseCpuMs} ms CPU each`);
  return cost;
}

async function setUp(url: string, issuer: DevIssuer, s: Settings): Promise<Patient[]> {
  const started = Date.now();
  const patients: Patient[] = [];
  for (let p = 0; p < s.patients; p++) {
    const token = await issuer.sign({ sub: `cost-patient-${p}`, roles: ['PATIENT'], ttl: '4h' });
    const { registerPatient } = await call<{ registerPatient: { id: string } }>(
      url,
      'mutation { registerPatient(displayName: "Cost") { id } }',
      {},
      token,
    );
    patients.push({ id: registerPatient.id, token });
    await call(url, GRANT, { to: CLINICIAN }, token);
  }
  const total = s.patients * s.records;
  await closedLoop(total, 8, async (i) => {
    await call(url, CREATE, { r: sampleResource(i) }, patients[i % s.patients].token);
  });
  console.log(
    `set-up: ${s.patients} patients, ${total} records in ${(Date.now() - started) / 1000} s`,
  );
  return patients;
}

async function main(): Promise<void> {
  const s = settings();
  if (s.profileDir) await mkdir(s.profileDir, { recursive: true });
  const dataDir = await mkdtemp(join(tmpdir(), 'custodia-cost-'));
  const costs = {} as Record<Kind, Cost>;
  try {
    const server = await ServerProcess.spawn(join(__dirname, 'servers', 'app-server.js'), {
      BENCH_DATA_DIR: dataDir,
    });
    try {
      const url = server.url;
      const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
      const clinician = await issuer.sign({
        sub: CLINICIAN,
        roles: ['CLINICIAN'],
        org: 'org1',
        ttl: '4h',
      });
      const patients = await setUp(url, issuer, s);
      const patientOf = (i: number) => patients[i % patients.length];
      costs.read = await measure('read', server, s, async (i) => {
        await call(url, RECORDS_QUERY, { p: patientOf(i).id }, clinician);
      });
      costs.write = await measure('write', server, s, async (i) => {
        await call(url, CREATE, { r: sampleResource(i) }, patientOf(i).token);
      });
      const granted: { patient: Patient; id: string }[] = [];
      costs.grant = await measure('grant', server, s, async (i) => {
        const { grantConsent } = await call<{ grantConsent: { id: string } }>(
          url,
          GRANT,
          { to: `cost-churn-${i}` },
          patientOf(i).token,
        );
        granted[i] = { patient: patientOf(i), id: grantConsent.id };
      });
      costs.revoke = await measure('revoke', server, s, async (i) => {
        const { patient, id } = granted[i];
        await call(url, REVOKE, { id }, patient.token);
      });
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }

  const kinds = Object.keys(MIX) as Kind[];
  const weighed = (k: 'serverCpuMs' | 'databaseCpuMs') =>
    round(
      kinds.reduce((sum, kind) => sum + MIX[kind] * costs[kind][k], 0),
      2,
    );
  const mixed = { serverCpuMs: weighed('serverCpuMs'), databaseCpuMs: weighed('databaseCpuMs') };
  console.log();
  console.log(
    'kind'.padEnd(8) +
      ['server ms', 'db ms', 'p50 ms', 'other cores'].map((h) => h.padStart(13)).join(''),
  );
  for (const k of kinds) {
    const c = costs[k];
    console.log(
      k.padEnd(8) +
        [c.serverCpuMs, c.databaseCpuMs, c.p50Ms, c.otherCores]
          .map((v) => String(v).padStart(13))
          .join(''),
    );
  }
  console.log(
    `mixed (soak's mix) server ${mixed.serverCpuMs} ms, database ${mixed.databaseCpuMs} ms CPU per request`,
  );

  if (s.profileDir) {
    for (const k of kinds) {
      const file = join(s.profileDir, `${k}.cpuprofile`);
      console.log(`\n== ${k}: CPU profile of the measured requests (${file}) ==`);
      console.log(await summariseProfileFile(file, s.requests));
    }
    console.log('\n(profiled run: results file not written)');
    return;
  }
  const results = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    settings: {
      requests: s.requests,
      warmup: s.warmup,
      connections: s.connections,
      patients: s.patients,
      recordsPerPatient: s.records,
      readQuery: RECORDS_QUERY.replace(/\s+/g, ' '),
    },
    costs,
    mix: MIX,
    mixed,
    notes:
      'serverCpuMs: CPU time (user + system, /proc, 10 ms ticks) of the Node server process ' +
      'over the measured requests, divided by their number; databaseCpuMs: the same for the ' +
      'embedded PostgreSQL processes. `mixed` weighs the kinds by the soak mix. CPU time per ' +
      'request is far less sensitive than throughput to other load on the machine ' +
      '(otherCores), though not immune to it (shared caches, frequency).',
  };
  await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
  await writeFile(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');
  console.log(`written to ${RESULTS_FILE}`);
}

main().catch((e: Error) => {
  console.error(`bench:cost failed: ${e.stack ?? e.message}`);
  process.exit(1);
});
