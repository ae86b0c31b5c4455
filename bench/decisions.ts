// `npm run bench:decisions`: latency of `assessRisk` for the LOGISTIC preset, end to end over
// GraphQL against the real API (embedded PostgreSQL and ledger, in a child process): consent
// decision, reading and opening the patient's records, the model (loaded once, cached by hash),
// the ledger's RecordDecision, the sealed row and the access event. Requests go one at a time,
// so each latency is the path's own, not queueing. Results go to bench/results/decisions.json.
//   options: --warmup 30 --requests 300 --observations 40
//            --profile  (CPU-profile the server during the measured run; writes no results)
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../src/auth';
import { DEV_AUDIENCE, DEV_ISSUER } from '../src/config';
import { integerOption } from './lib/args';
import { summariseProfileFile } from './lib/cpu-profile';
import { ServerProcess } from './lib/server-process';

const TARGET_P50_MS = 25;
const TARGET_P99_MS = 60;
const FEATURES = ['2345-7', '4548-4', '39156-5', '30525-0'];
const UNITS: Record<string, string> = { '2345-7': 'mg/dL', '4548-4': '%', '39156-5': 'kg/m2' };
const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'decisions.json');

function settings() {
  const { values } = parseArgs({
    options: {
      warmup: { type: 'string', default: '30' },
      requests: { type: 'string', default: '300' },
      observations: { type: 'string', default: '40' },
      profile: { type: 'boolean', default: false },
    },
  });
  return {
    warmup: integerOption('warmup', values.warmup),
    requests: integerOption('requests', values.requests),
    observations: integerOption('observations', values.observations),
    profile: values.profile,
  };
}

async function gql<T>(url: string, query: string, variables: object, token: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

function observation(code: string, value: number, daysAgo: number) {
  const unit = UNITS[code];
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    effectiveDateTime: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
    valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
  };
}

/** A study, a completed one-round run of a known LOGISTIC model, deployed; a patient with records. */
async function prepare(url: string, issuer: DevIssuer, observations: number) {
  const sign = (sub: string, roles: string[], org?: string) =>
    issuer.sign({ sub, roles: roles as never, org, ttl: '2h' });
  const researcher = await sign('bench-researcher', ['RESEARCHER']);
  const admin = await sign('bench-admin', ['ADMIN']);
  const patient = await sign('bench-patient', ['PATIENT']);
  const clinician = await sign('bench-clinician', ['CLINICIAN'], 'org1');

  const { createStudy } = await gql<{ createStudy: { id: string } }>(
    url,
    `mutation($f: [String!]!) { createStudy(input: { title: "Bench", features: $f,
       label: "44054006", minNodes: 1 }) { id } }`,
    { f: FEATURES },
    researcher,
  );
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const { registerTrainingNode } = await gql<{ registerTrainingNode: { id: string } }>(
    url,
    `mutation($jwk: JSON!) { registerTrainingNode(input: { organizationId: "org1",
       name: "bench-node", publicKeyJwk: $jwk }) { id } }`,
    { jwk: await exportJWK(publicKey) },
    admin,
  );
  const nodeToken = await sign(registerTrainingNode.id, ['NODE'], 'org1');
  const { registerPatient } = await gql<{ registerPatient: { id: string } }>(
    url,
    'mutation { registerPatient { id } }',
    {},
    patient,
  );
  const patientId = registerPatient.id;
  await gql(
    url,
    `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
       purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
    { s: createStudy.id },
    patient,
  );
  const { startTraining } = await gql<{ startTraining: { id: string } }>(
    url,
    'mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }',
    { s: createStudy.id },
    researcher,
  );
  const runId = startTraining.id;
  const body = Buffer.from(new Float32Array([0.9, 0.6, 0.3, 0.4, -0.5]).buffer);
  const manifest = {
    runId,
    round: 1,
    nodeId: registerTrainingNode.id,
    numExamples: 50,
    contributors: [patientId],
    updateSha256: createHash('sha256').update(body).digest('hex'),
    metrics: { loss: 0.4, accuracy: 0.8, auc: 0.85 },
  };
  const res = await fetch(`${url}/fl/runs/${runId}/rounds/1/updates`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      authorization: `Bearer ${nodeToken}`,
      'x-custodia-manifest': await new CompactSign(Buffer.from(JSON.stringify(manifest)))
        .setProtectedHeader({ alg: 'ES256' })
        .sign(privateKey),
    },
    body,
  });
  // An in-process training node may close the round first; either way the run completes.
  if (!res.ok) console.log(`simulated update answered ${res.status}`);
  for (let i = 0; ; i++) {
    const { trainingRun } = await gql<{ trainingRun: { status: string } }>(
      url,
      'query($id: ID!) { trainingRun(id: $id) { status } }',
      { id: runId },
      researcher,
    );
    if (trainingRun.status === 'COMPLETED') break;
    if (i > 100) throw new Error(`run did not complete: ${trainingRun.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { deployModel } = await gql<{ deployModel: { id: string } }>(
    url,
    'mutation($r: ID!) { deployModel(runId: $r) { id } }',
    { r: runId },
    researcher,
  );

  const create = (resource: object) =>
    gql(
      url,
      'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }',
      { r: resource },
      patient,
    );
  await create({ resourceType: 'Patient', birthDate: '1961-03-14' });
  const codes = Object.keys(UNITS);
  for (let i = 0; i < observations; i++) {
    const code = codes[i % codes.length];
    const value = { '2345-7': 90 + i, '4548-4': 5 + (i % 20) / 10, '39156-5': 22 + (i % 10) }[
      code
    ]!;
    await create(observation(code, value, observations - i));
  }
  await gql(
    url,
    `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "bench-clinician",
       purpose: TREATMENT, actions: [READ] }) { id } }`,
    {},
    patient,
  );
  return { patientId, modelId: deployModel.id, clinician };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

async function main(): Promise<void> {
  const s = settings();
  const dataDir = await mkdtemp(join(tmpdir(), 'custodia-bench-'));
  try {
    const server = await ServerProcess.spawn(join(__dirname, 'servers', 'app-server.js'), {
      BENCH_DATA_DIR: dataDir,
    });
    try {
      const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
      const { patientId, modelId, clinician } = await prepare(server.url, issuer, s.observations);
      const assess = () =>
        gql<{ assessRisk: { probability: number } }>(
          server.url,
          'mutation($p: ID!, $m: ID!) { assessRisk(patientId: $p, modelId: $m) { id probability } }',
          { p: patientId, m: modelId },
          clinician,
        );
      // The same-run reference: a page of 20 of the same patient's records, read by the same
      // clinician the same way. The machine is shared, so the ratio travels better than ms.
      const readPage = () =>
        gql(
          server.url,
          `query($p: ID!) { records(patientId: $p, first: 20) { items { id resource integrity } } }`,
          { p: patientId },
          clinician,
        );
      const sequential = async (op: () => Promise<unknown>): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < s.requests; i++) {
          const started = performance.now();
          await op();
          out.push(performance.now() - started);
        }
        return out.sort((a, b) => a - b);
      };
      for (let i = 0; i < s.warmup; i++) await readPage();
      const reads = await sequential(readPage);
      for (let i = 0; i < s.warmup; i++) await assess();
      const load = loadavg()[0];
      const cpuBefore = server.cpuSeconds();
      const ownBefore = process.cpuUsage();
      if (s.profile) await server.startProfile();
      const latencies: number[] = [];
      for (let i = 0; i < s.requests; i++) {
        const started = performance.now();
        await assess();
        latencies.push(performance.now() - started);
      }
      const cpuAfter = server.cpuSeconds();
      if (s.profile) {
        const file = join(dataDir, 'decisions.cpuprofile');
        await server.stopProfile(file);
        console.log(await summariseProfileFile(file, s.requests, 30));
        console.log('(profiled run: results file not written)');
        return;
      }
      const own = process.cpuUsage(ownBefore);
      latencies.sort((a, b) => a - b);
      const result = {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAverage1m: round(load) },
        settings: { ...s, features: FEATURES, preset: 'LOGISTIC', sequential: true },
        latencyMs: {
          p50: round(percentile(latencies, 50)),
          p90: round(percentile(latencies, 90)),
          p99: round(percentile(latencies, 99)),
          max: round(latencies[latencies.length - 1]),
        },
        cpuMsPerDecision: {
          server: round(((cpuAfter.server - cpuBefore.server) * 1000) / s.requests),
          database: round(((cpuAfter.descendants - cpuBefore.descendants) * 1000) / s.requests),
          client: round((own.user + own.system) / 1000 / s.requests),
        },
        reference: {
          operation: 'records(patientId, first: 20) by the same clinician, sequential',
          p50Ms: round(percentile(reads, 50)),
          p99Ms: round(percentile(reads, 99)),
          assessOverReadP50: round(percentile(latencies, 50) / percentile(reads, 50)),
        },
        targets: { p50Ms: TARGET_P50_MS, p99Ms: TARGET_P99_MS },
      };
      const met = result.latencyMs.p50 <= TARGET_P50_MS && result.latencyMs.p99 <= TARGET_P99_MS;
      console.log(JSON.stringify(result, null, 2));
      console.log(
        met ? 'targets met' : 'targets NOT met (see the load average: the machine is shared)',
      );
      await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
      await writeFile(RESULTS_FILE, JSON.stringify({ ...result, met }, null, 2) + '\n');
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
