// `npm run bench:fhir`: the cost of strict FHIR R4 validation (validatePatientResource: copy,
// owner binding, JSON schema, structure walk, bindings, invariants, narrative) per resource, for
// a few kinds of real resources from the shared corpus (../shared/data/fhir-r4/valid). Measures,
// in one fresh process: loading the definitions (once per process), the first validation of each
// kind (its JSON-schema validator compiles then), and after a warm-up, each validation timed on
// its own: ops/s, p50 and p99 in µs, and CPU µs per validation (the machine's load average is
// recorded: on a shared machine the wall-clock tail is mostly waiting for a core). Results go to
// bench/results/fhir-validate.json.
//   options: --iterations 3000 --warmup 500
import { writeFile, mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFhirValidation } from '../src/records/fhir/index';
import { validatePatientResource } from '../src/records/fhir';
import { corpusFiles, corpusResource, type Resource } from '../test/helpers/fhir-corpus';
import { observation } from '../test/helpers/fhir';

const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'fhir-validate.json');
const TARGET = { p50UsPerTypicalObservation: 1000 };
const OWNER = '0b9c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4';

/** The kinds measured: what each is, and the corpus file (or fixture) it is. */
const KINDS: { kind: string; source: string; resource: () => Resource }[] = [
  {
    kind: 'Observation, lab result (test fixture)',
    source: 'test/helpers/fhir.ts observation()',
    resource: () => observation() as Resource,
  },
  ...(
    [
      ['Observation, vital sign (Synthea)', 'synthea-Observation-1.json'],
      [
        'Observation, lab panel with narrative and reference range (HL7)',
        'hl7-Observation-31.json',
      ],
      ['Condition (Synthea)', 'synthea-Condition-1.json'],
      [
        'MedicationRequest with a contained Medication and narrative (HL7)',
        'hl7-MedicationRequest-10.json',
      ],
      ['Encounter (Synthea)', 'synthea-Encounter-1.json'],
      ['DiagnosticReport (Synthea)', 'synthea-DiagnosticReport-1.json'],
      [
        'RiskAssessment with 8 predictions and a table narrative (HL7)',
        'hl7-RiskAssessment-2.json',
      ],
    ] as const
  ).map(([kind, file]) => ({ kind, source: file, resource: () => corpusResource(file) })),
];

interface Measurement {
  kind: string;
  source: string;
  bytes: number;
  firstUseMs: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  /** CPU time per validation: what the wall-clock figures are, less time spent descheduled. */
  cpuUsPerOp: number;
}

function settings() {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', default: '3000' },
      warmup: { type: 'string', default: '500' },
    },
  });
  return { iterations: Number(values.iterations), warmup: Number(values.warmup) };
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function measure(kind: (typeof KINDS)[number], s: ReturnType<typeof settings>): Measurement {
  const resource = kind.resource();
  let t = performance.now();
  validatePatientResource(resource, OWNER);
  const firstUseMs = performance.now() - t;
  for (let i = 0; i < s.warmup; i++) validatePatientResource(resource, OWNER);
  const times = new Float64Array(s.iterations);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < s.iterations; i++) {
    t = performance.now();
    validatePatientResource(resource, OWNER);
    times[i] = (performance.now() - t) * 1000;
  }
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const sorted = [...times].sort((a, b) => a - b);
  return {
    kind: kind.kind,
    source: kind.source,
    bytes: JSON.stringify(resource).length,
    firstUseMs: round(firstUseMs),
    opsPerSec: Math.round(s.iterations / elapsed),
    p50Us: round(percentile(sorted, 50)),
    p99Us: round(percentile(sorted, 99)),
    meanUs: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    cpuUsPerOp: round((used.user + used.system) / s.iterations),
  };
}

/** Every Observation of the corpus validated once more after warm-up: the spread of real ones. */
function corpusObservations() {
  const resources = corpusFiles()
    .filter((f) => f.includes('-Observation-'))
    .map((f) => corpusResource(f));
  for (let pass = 0; pass < 3; pass++) {
    for (const r of resources) validatePatientResource(r, OWNER);
  }
  const times = resources.map((r) => {
    const t = performance.now();
    for (let i = 0; i < 20; i++) validatePatientResource(r, OWNER);
    return ((performance.now() - t) * 1000) / 20;
  });
  const sorted = times.sort((a, b) => a - b);
  return {
    observations: resources.length,
    p50Us: round(percentile(sorted, 50)),
    p99Us: round(percentile(sorted, 99)),
    maxUs: round(sorted[sorted.length - 1]),
  };
}

async function main(): Promise<void> {
  const s = settings();
  const loadAverageAtStart = loadavg().map((l) => round(l, 2));
  const t = performance.now();
  loadFhirValidation();
  const loadMs = round(performance.now() - t);
  const results = KINDS.map((k) => measure(k, s));
  const corpus = corpusObservations();
  const typical = results.filter((r) => r.kind.startsWith('Observation'));
  const worstObservationP50 = Math.max(...typical.map((r) => r.p50Us));
  const report = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      loadAverageAtStart,
    },
    settings: s,
    target: TARGET,
    loadMs,
    results,
    corpusObservations: corpus,
    meetsTarget: worstObservationP50 <= TARGET.p50UsPerTypicalObservation,
  };
  await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
  await writeFile(RESULTS_FILE, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `load ${loadMs} ms\n` +
      results
        .map(
          (r) =>
            `${r.kind}: ${r.opsPerSec} ops/s, p50 ${r.p50Us} µs, p99 ${r.p99Us} µs, ` +
            `CPU ${r.cpuUsPerOp} µs (first use ${r.firstUseMs} ms)`,
        )
        .join('\n') +
      `\ncorpus Observations (${corpus.observations}): p50 ${corpus.p50Us} µs, p99 ${corpus.p99Us} µs\n` +
      `wrote ${RESULTS_FILE}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
