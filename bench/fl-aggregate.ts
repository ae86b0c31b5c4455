// `npm run bench:fl-aggregate`: FedAvg of N ∈ {10, 50, 200} updates of 1M float32
// parameters — GB/s of update data folded, and peak RSS above the process with its inputs
// loaded — against numpy (bench/fl-aggregate.py): Flower's formula over the list of N
// updates, and a streaming numpy fold. Also FedAvg with differential privacy (clipping,
// and 1M Gaussian samples from the CSPRNG), which costs a second pass per update.
//
// Every measurement runs in its own child process, so each peak RSS (VmHWM, reset just
// before the aggregation starts) is its own. In the Node child the inputs are the global
// model and one update buffer, refilled with update k before fold k (generation is not
// timed): the benchmark never holds N models; numpy's Flower formula needs all N, so there
// the N updates are part of the inputs. Results go to bench/results/fl-aggregate.json.
//
// The machine is shared, so its load drifts: every measurement is taken --trials times, the
// implementations taking turns, and a ratio is the median of the ratios within each turn.
// numpy runs from bench/.venv, which the benchmark creates from bench/requirements.txt.
//   options: --params 1000000 --n 10,50,200 --repeat 3 --trials 5 --no-numpy
import { fork, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FedAvg, releaseModel } from '../src/federated/strategies';
import { numpyPython } from './lib/numpy-venv';

const RESULTS_FILE = resolve(__dirname, '..', '..', 'bench', 'results', 'fl-aggregate.json');
const NUMPY_SCRIPT = resolve(__dirname, '..', '..', 'bench', 'fl-aggregate.py');
const TARGET = { vsNumpyStream: 1, peakModels: 3, flatWithinModels: 0.5 };
const MODES = ['fedavg', 'fedavg-dp'] as const;
type Mode = (typeof MODES)[number];

interface Measurement {
  impl: string;
  n: number;
  params: number;
  /** Median over the repeats of the aggregation's wall time (all folds + finish). */
  seconds: number;
  /** CPU time (user + system) of the repeat with the median wall time. */
  cpuSeconds: number;
  gbPerSec: number;
  /** Of which: beginning (the sums), folding alone, and the finish (division, noise, float32). */
  foldGbPerSec?: number;
  beginMs?: number;
  finishMs?: number;
  idleRssMiB: number;
  peakAboveIdleMiB: number;
  peakAboveIdleModels: number;
  /** Σ of the aggregated model's coordinates, in float64. */
  checksum: number;
  /** numpy only: the checksum of the exact float64 average, rounded to float32. */
  referenceChecksum?: number;
  /** seconds of each trial, in order (the row above is the trial with the median). */
  trialSeconds?: number[];
}

// Deterministic data, bit-identical to bench/fl-aggregate.py: a multiplicative hash of the
// coordinate (and of the update's number), so both sides aggregate the same vectors.
function fillGlobal(global: Float32Array): void {
  for (let i = 0; i < global.length; i++) {
    global[i] = (Math.imul(i, 0x9e3779b1) >>> 0) / 2 ** 32 - 0.5;
  }
}

function fillUpdate(update: Float32Array, global: Float32Array, k: number): void {
  const salt = Math.imul(k + 1, 40503);
  for (let i = 0; i < update.length; i++) {
    const h = (Math.imul(i, 0x9e3779b1) + salt) >>> 0;
    update[i] = global[i] + 0.01 * (h / 2 ** 32 - 0.5);
  }
}

const examples = (k: number) => 1 + ((k * 7919) % 1000);

function statusKb(field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
    readFileSync('/proc/self/status', 'utf8'),
  );
  if (!match) throw new Error(`/proc/self/status has no ${field}`);
  return Number(match[1]);
}

function strategyFor(mode: Mode, n: number): FedAvg {
  if (mode === 'fedavg') return new FedAvg();
  return new FedAvg({
    privacy: { clipNorm: 1, noiseMultiplier: 1, denominator: n, sampleRate: 1 },
  });
}

/**
 * One aggregation of n updates; returns the time spent beginning (allocating the sums, as
 * numpy's np.zeros is timed), folding and finishing.
 */
function aggregate(mode: Mode, global: Float32Array, update: Float32Array, n: number) {
  // performance.now() rather than hrtime.bigint(): no heap allocation per reading.
  let cpu = 0;
  let c = process.cpuUsage();
  const t0 = performance.now();
  const round = strategyFor(mode, n).begin(global, 1);
  const beginMs = performance.now() - t0;
  let foldMs = 0;
  cpu += cpuSince(c);
  for (let k = 0; k < n; k++) {
    fillUpdate(update, global, k);
    c = process.cpuUsage();
    const t = performance.now();
    round.fold(update, examples(k));
    foldMs += performance.now() - t;
    cpu += cpuSince(c);
  }
  c = process.cpuUsage();
  const t = performance.now();
  const { model } = round.finish();
  const finishMs = performance.now() - t;
  cpu += cpuSince(c);
  let checksum = 0;
  for (let i = 0; i < model.length; i++) checksum += model[i];
  // Done with the model, as the coordinator is once it is stored: its memory serves the next.
  releaseModel(model);
  return {
    beginSeconds: beginMs / 1000,
    foldSeconds: foldMs / 1000,
    finishSeconds: finishMs / 1000,
    cpuSeconds: cpu,
    checksum,
  };
}

/** CPU seconds (user + system) of this process since `start`. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}

function runChild(mode: Mode, n: number, params: number, repeat: number): Measurement {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the child needs --expose-gc');
  const global = new Float32Array(params);
  fillGlobal(global);
  const update = new Float32Array(params);
  // Touch the update buffer's pages now: they are input, not the aggregation's memory.
  fillUpdate(update, global, 0);
  // Warm the JIT on a small model, so the measured rounds run optimised code and no large
  // buffer has been freed (and kept by the allocator) before the idle reading.
  const small = global.subarray(0, 1 << 18);
  for (let r = 0; r < 5; r++) aggregate(mode, small, new Float32Array(small.length), 4);
  gc();
  gc();
  const idleKb = statusKb('VmRSS');
  writeFileSync('/proc/self/clear_refs', '5'); // VmHWM := VmRSS
  // The peak is that of the first aggregation; the repeats only steady the timing (the
  // allocator may hand a repeat pages it kept, or fragment, either way blurring the peak).
  const runs = [aggregate(mode, global, update, n)];
  const peakKb = statusKb('VmHWM');
  for (let r = 1; r < repeat; r++) {
    // Free the finished round's buffers before the next, as a coordinator between rounds.
    gc();
    runs.push(aggregate(mode, global, update, n));
  }
  const total = (r: (typeof runs)[number]) => r.beginSeconds + r.foldSeconds + r.finishSeconds;
  runs.sort((a, b) => total(a) - total(b));
  const median = runs[Math.floor(runs.length / 2)];
  const bytes = n * params * 4;
  const seconds = total(median);
  return {
    impl: `custodia-${mode}`,
    n,
    params,
    seconds,
    cpuSeconds: median.cpuSeconds,
    gbPerSec: bytes / seconds / 1e9,
    foldGbPerSec: bytes / median.foldSeconds / 1e9,
    beginMs: median.beginSeconds * 1000,
    finishMs: median.finishSeconds * 1000,
    idleRssMiB: idleKb / 1024,
    peakAboveIdleMiB: (peakKb - idleKb) / 1024,
    peakAboveIdleModels: ((peakKb - idleKb) * 1024) / (params * 4),
    checksum: median.checksum,
  };
}

function node(mode: Mode, n: number, params: number, repeat: number): Promise<Measurement> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(__filename, ['--child', mode, String(n), String(params), String(repeat)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (m: Measurement) => resolvePromise(m));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`child ${mode} n=${n} exited with ${code}`));
    });
  });
}

function numpy(
  python: string,
  impl: 'flower' | 'stream',
  n: number,
  params: number,
  repeat: number,
): Measurement {
  // Some of our machines set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, because older OpenBLAS
  // builds compute wrong results on their processors; to benchmark numpy as installed, both
  // are unset together for this command alone.
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const out = spawnSync(
    python,
    [
      NUMPY_SCRIPT,
      '--impl',
      impl,
      '--n',
      String(n),
      '--params',
      String(params),
      '--repeat',
      String(repeat),
    ],
    { env, encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (out.status !== 0) throw new Error(`numpy ${impl} n=${n} failed: ${out.stderr || out.error}`);
  return JSON.parse(out.stdout) as Measurement;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      params: { type: 'string', default: '1000000' },
      n: { type: 'string', default: '10,50,200' },
      repeat: { type: 'string', default: '3' },
      trials: { type: 'string', default: '5' },
      'no-numpy': { type: 'boolean', default: false },
    },
  });
  const params = Number(values.params);
  const ns = values.n.split(',').map(Number);
  const repeat = Number(values.repeat);
  const trials = Number(values.trials);
  const python = values['no-numpy'] ? null : numpyPython();
  const results: Measurement[] = [];
  /** Per N, the ratio of custodia-fedavg's throughput to numpy-stream's in each trial. */
  const streamRatios = new Map<number, number[]>();
  /** The same ratio by CPU time, which a busy machine's waits for a core do not inflate. */
  const cpuRatios = new Map<number, number[]>();
  let numpyVersion: string | null = null;
  for (const n of ns) {
    const runs = new Map<string, Measurement[]>();
    const add = (m: Measurement) => runs.set(m.impl, [...(runs.get(m.impl) ?? []), m]);
    for (let t = 0; t < trials; t++) {
      for (const mode of MODES) add(await node(mode, n, params, repeat));
      if (python) {
        for (const impl of ['flower', 'stream'] as const) {
          const m = numpy(python, impl, n, params, repeat) as Measurement & { numpy?: string };
          numpyVersion = m.numpy ?? numpyVersion;
          delete m.numpy;
          delete (m as { dtype?: string }).dtype;
          add(m);
        }
        const ours = runs.get('custodia-fedavg')!.at(-1)!;
        const theirs = runs.get('numpy-stream')!.at(-1)!;
        streamRatios.set(n, [...(streamRatios.get(n) ?? []), theirs.seconds / ours.seconds]);
        cpuRatios.set(n, [...(cpuRatios.get(n) ?? []), theirs.cpuSeconds / ours.cpuSeconds]);
      }
    }
    const row: Measurement[] = [];
    for (const list of runs.values()) {
      const seconds = list.map((m) => m.seconds);
      const chosen = [...list].sort((a, b) => a.seconds - b.seconds)[Math.floor(list.length / 2)];
      row.push({ ...chosen, trialSeconds: seconds });
    }
    for (const m of row) {
      console.log(
        `  N=${n} ${m.impl.padEnd(18)} ${round(m.gbPerSec).toFixed(2).padStart(6)} GB/s  ` +
          `peak +${round(m.peakAboveIdleMiB, 1)} MiB (${round(m.peakAboveIdleModels)} models)  ` +
          `checksum ${m.checksum.toFixed(6)}`,
      );
    }
    const ratios = streamRatios.get(n);
    if (ratios) {
      console.log(
        `  N=${n} custodia-fedavg / numpy-stream: ${round(median(ratios))} ` +
          `(trials ${ratios.map((r) => round(r)).join(', ')})`,
      );
      const byCpu = cpuRatios.get(n)!;
      console.log(
        `  N=${n} custodia-fedavg / numpy-stream by CPU time: ${round(median(byCpu))} ` +
          `(trials ${byCpu.map((r) => round(r)).join(', ')})`,
      );
    }
    results.push(...row);
  }

  const ours = results.filter((r) => r.impl === 'custodia-fedavg');
  const peaks = ours.map((r) => r.peakAboveIdleModels);
  const vs = (impl: string) =>
    ours.map((r) => {
      const other = results.find((o) => o.impl === impl && o.n === r.n);
      return other ? { n: r.n, ratio: round(r.gbPerSec / other.gbPerSec) } : null;
    });
  // Within each trial the two ran minutes apart at most, under the same load.
  const vsStream = ns
    .filter((n) => streamRatios.has(n))
    .map((n) => {
      const ratios = streamRatios.get(n)!;
      return { n, ratio: round(median(ratios)), trials: ratios.map((r) => round(r)) };
    });
  const vsStreamCpu = ns
    .filter((n) => cpuRatios.has(n))
    .map((n) => {
      const ratios = cpuRatios.get(n)!;
      return { n, ratio: round(median(ratios)), trials: ratios.map((r) => round(r)) };
    });
  const verdict = {
    throughputVsNumpyFlower: vs('numpy-flower'),
    throughputVsNumpyStream: vsStream,
    cpuTimeVsNumpyStream: vsStreamCpu,
    throughputVsNumpyStreamMet:
      vsStream.length > 0 && vsStream.every((r) => r.ratio >= TARGET.vsNumpyStream),
    peakModelsMax: round(Math.max(...peaks)),
    peakWithinTarget: Math.max(...peaks) <= TARGET.peakModels,
    peakFlatInN: Math.max(...peaks) - Math.min(...peaks) <= TARGET.flatWithinModels,
    // The exact float64 average, rounded to float32, is what FedAvg must return bit for bit;
    // its checksum comes from the numpy script.
    exactAsReference: ns.every((n) => {
      const mine = results.find((r) => r.impl === 'custodia-fedavg' && r.n === n)!;
      const numpyRun = results.find((r) => r.impl === 'numpy-stream' && r.n === n);
      return !numpyRun?.referenceChecksum || mine.checksum === numpyRun.referenceChecksum;
    }),
  };
  console.log(verdict);

  const output = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      numpy: numpyVersion,
    },
    settings: { params, n: ns, repeat, trials, modelMiB: round((params * 4) / 2 ** 20, 3) },
    target: {
      throughput: '≥ numpy',
      throughputVsNumpyStream: `custodia-fedavg ≥ ${TARGET.vsNumpyStream}× numpy-stream at every N`,
      peakAboveIdleModels: TARGET.peakModels,
      flatInN: `peak varies by ≤ ${TARGET.flatWithinModels} model across N`,
    },
    results: results.map((r) => ({
      ...r,
      seconds: round(r.seconds, 4),
      cpuSeconds: round(r.cpuSeconds, 4),
      gbPerSec: round(r.gbPerSec),
      foldGbPerSec: r.foldGbPerSec === undefined ? undefined : round(r.foldGbPerSec),
      beginMs: r.beginMs === undefined ? undefined : round(r.beginMs, 1),
      finishMs: r.finishMs === undefined ? undefined : round(r.finishMs, 1),
      idleRssMiB: round(r.idleRssMiB, 1),
      peakAboveIdleMiB: round(r.peakAboveIdleMiB, 1),
      peakAboveIdleModels: round(r.peakAboveIdleModels),
    })),
    verdict,
    notes:
      'GB/s = N × params × 4 bytes / wall time of the aggregation, from allocating its sums ' +
      '(begin; numpy-stream times its np.zeros) to the model (median of the repeats; ' +
      'generating the updates is not timed); each row is the trial with the median time, ' +
      'trialSeconds all of them, and throughputVsNumpyStream the median over the trials of ' +
      'the ratio within each trial (the two implementations ran back to back); ' +
      'cpuTimeVsNumpyStream the same by CPU time (user + system) of the median repeat, which ' +
      'waiting for a core on a shared machine does not inflate. Peak = VmHWM − VmRSS, the high-water mark reset ' +
      'once the inputs are in memory: global model + one reused update buffer for Node, global ' +
      'model + the N updates for numpy. numpy-flower is Flower’s FedAvg formula over its list ' +
      'of N updates; numpy-stream folds into a float64 accumulator as we do, but both round ' +
      'each product n·w to float32 first, so their checksums differ from referenceChecksum ' +
      '(the exact average) in the 4th digit, while custodia-fedavg matches it exactly. ' +
      'custodia-fedavg-dp clips every delta (a second pass per update) and draws 1M Gaussian ' +
      'samples from the CSPRNG at finish; its checksum includes the noise.',
  };
  await mkdir(resolve(RESULTS_FILE, '..'), { recursive: true });
  await writeFile(RESULTS_FILE, JSON.stringify(output, null, 2) + '\n');
  console.log(`written to ${RESULTS_FILE}`);
}

if (process.argv[2] === '--child') {
  const [, , , mode, n, params, repeat] = process.argv;
  process.send!(runChild(mode as Mode, Number(n), Number(params), Number(repeat)));
  process.disconnect();
} else {
  main().catch((e: Error) => {
    console.error(`bench:fl-aggregate failed: ${e.stack ?? e.message}`);
    process.exit(1);
  });
}
