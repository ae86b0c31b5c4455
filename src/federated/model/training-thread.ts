// Local training on a thread of its own. An in-process training node trains beside the API it
// runs in; on the API's thread its TensorFlow.js steps took the event loop in turns with the
// requests (a round of 10 nodes, about 50 ms of it at 2,000 patients) and ran on one core. A
// worker thread trains on another core and leaves the event loop to the requests.
//
// One worker, started on first use and kept; requests go to it as they come and train in
// turns, batch by batch, as they did on the API's thread. The worker runs the same code on the same backend, so its weights
// are bit for bit those of training here (training-thread.spec.ts). Where a worker cannot
// start, training runs on this thread as before, and the reason is logged once.
import { Logger } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelPreset } from './architecture';
import type { Evaluation, Examples, LocalTrainingInput, TrainingResult } from './train';
import { perform, toWire, Trainer, TrainingRequest, TrainingResponse } from './training-request';

export type { Trainer } from './training-request';

type TrainModule = typeof import('./train');
let here: TrainModule | undefined;
/** Training on this thread; TensorFlow.js loads with the first use, not with every process. */
export function trainingHere(): Trainer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  here ??= require('./train') as TrainModule;
  return here;
}

interface Pending {
  worker: Worker;
  request: TrainingRequest;
  resolve(value: TrainingResult | Evaluation): void;
  reject(error: Error): void;
}

export class TrainingThread implements Trainer {
  private readonly logger = new Logger(TrainingThread.name);
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  /** Workers that answered at least once: one that fails before is taken not to start here. */
  private readonly answered = new WeakSet<Worker>();
  private nextId = 1;
  /** Set once a worker could not start: training then stays on this thread. */
  private unavailable = false;

  /** `spawnWorker`: how a worker is made (tests give one that cannot start). */
  constructor(private readonly spawnWorker: () => Worker = spawn) {}

  trainLocal(input: LocalTrainingInput): Promise<TrainingResult> {
    return this.run({ id: this.nextId++, kind: 'train', input }) as Promise<TrainingResult>;
  }

  evaluate(preset: ModelPreset, weights: Float32Array, examples: Examples): Promise<Evaluation> {
    return this.run({
      id: this.nextId++,
      kind: 'evaluate',
      input: { preset, weights, examples },
    }) as Promise<Evaluation>;
  }

  /** Whether a worker is up (false before the first request, after `close`, or without one). */
  get threaded(): boolean {
    return this.worker !== undefined;
  }

  /** Stops the worker; what it was doing fails, and the next request starts another. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private run(request: TrainingRequest): Promise<TrainingResult | Evaluation> {
    const worker = this.started();
    if (!worker) return answerHere(request);
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { worker, request, resolve, reject });
      // Kept alive while it has work; an idle worker never holds the process open.
      worker.ref();
      const { wire, transfer } = toWire(request);
      worker.postMessage(wire, transfer);
    });
  }

  private started(): Worker | undefined {
    if (this.worker || this.unavailable) return this.worker;
    try {
      const worker = this.spawnWorker();
      worker.unref();
      worker.on('message', (response: TrainingResponse) => this.settle(worker, response));
      worker.on('error', (e) => this.fail(worker, e));
      worker.on('exit', (code) =>
        this.fail(worker, new Error(`the training thread stopped (exit code ${code})`)),
      );
      this.worker = worker;
    } catch (e) {
      this.giveUp(e as Error);
    }
    return this.worker;
  }

  private giveUp(reason: Error): void {
    if (this.unavailable) return;
    this.unavailable = true;
    this.logger.warn(
      { reason: reason.message },
      'training runs on the API thread: no training thread could start',
    );
  }

  private settle(worker: Worker, response: TrainingResponse): void {
    this.answered.add(worker);
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    if (![...this.pending.values()].some((p) => p.worker === worker)) worker.unref();
    if (response.ok) {
      pending.resolve(response.result);
    } else {
      // The training errors that mean something to a caller are RangeErrors (bad settings, a
      // diverged model): they keep their class; any other keeps its name.
      const { name, message } = response.error;
      const error = name === 'RangeError' ? new RangeError(message) : new Error(message);
      error.name = name;
      pending.reject(error);
    }
  }

  /**
   * The worker failed or stopped. One that never answered could not start: training stays on
   * this thread from now on, its requests included. Otherwise what it held fails, and the
   * next request starts another.
   */
  private fail(worker: Worker, error: Error): void {
    if (this.worker === worker) this.worker = undefined;
    const started = this.answered.has(worker);
    if (!started) this.giveUp(error);
    for (const [id, p] of this.pending) {
      if (p.worker !== worker) continue;
      this.pending.delete(id);
      if (started) p.reject(error);
      else answerHere(p.request).then(p.resolve, p.reject);
    }
  }
}

/** A request answered on this thread. */
function answerHere(request: TrainingRequest): Promise<TrainingResult | Evaluation> {
  return perform(trainingHere(), request);
}

/**
 * The worker: compiled JavaScript beside this file; run from the TypeScript sources (the test
 * runner), the same sources compiled as they load by the compiler the tests use.
 */
function spawn(): Worker {
  const compiled = join(__dirname, 'training-worker.js');
  if (existsSync(compiled)) return new Worker(compiled);
  const source = join(__dirname, 'training-worker.ts');
  if (!existsSync(source)) throw new Error(`no training worker at ${compiled}`);
  return new Worker(FROM_SOURCES, {
    eval: true,
    workerData: { entry: source, swc: require.resolve('@swc/core') },
  });
}

/** Loads the worker's TypeScript with @swc/core and the project's .swcrc, as the tests do. */
const FROM_SOURCES = `
const { readFileSync } = require('node:fs');
const { workerData } = require('node:worker_threads');
const swc = require(workerData.swc);
require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(readFileSync(filename, 'utf8'), { filename, swcrc: true });
  module._compile(code, filename);
};
require(workerData.entry);
`;
