// What passes between a training node and the thread that trains for it (training-thread.ts,
// training-worker.ts), and how a request is answered, on whichever thread answers it.
import type { ModelPreset } from './architecture';
import type { Evaluation, Examples, LocalTrainingInput, TrainingResult } from './train';

export type TrainingRequest =
  | { id: number; kind: 'train'; input: LocalTrainingInput }
  | {
      id: number;
      kind: 'evaluate';
      input: { preset: ModelPreset; weights: Float32Array; examples: Examples };
    };

export type TrainingResponse =
  | { id: number; ok: true; kind: 'train'; result: TrainingResult }
  | { id: number; ok: true; kind: 'evaluate'; result: Evaluation }
  | { id: number; ok: false; error: { name: string; message: string } };

/**
 * Examples as they cross to a training thread: their values in one flat Float64Array (every
 * number as it was), where a structured clone of a list per example cost the sending thread
 * about 10 µs an example. Examples of uneven width cross as they are, to be refused there.
 */
interface PackedExamples {
  width: number;
  x: Float64Array;
  y: Float64Array;
}

/** A request as it is posted to a training thread (see PackedExamples). */
export type WireRequest =
  | { id: number; kind: 'train'; input: Omit<LocalTrainingInput, 'examples'>; examples: Wire }
  | {
      id: number;
      kind: 'evaluate';
      input: { preset: ModelPreset; weights: Float32Array };
      examples: Wire;
    };
type Wire = { packed: PackedExamples } | { plain: Examples };

/** The request to post, and the buffers that may be moved rather than copied. */
export function toWire(request: TrainingRequest): { wire: WireRequest; transfer: ArrayBuffer[] } {
  const { examples, ...input } = request.input;
  const { wire, transfer } = pack(examples);
  return {
    wire: { id: request.id, kind: request.kind, input, examples: wire } as WireRequest,
    transfer,
  };
}

/** The request a training thread received, as it was made. */
export function fromWire(wire: WireRequest): TrainingRequest {
  const examples = 'packed' in wire.examples ? unpack(wire.examples.packed) : wire.examples.plain;
  return { id: wire.id, kind: wire.kind, input: { ...wire.input, examples } } as TrainingRequest;
}

function pack(examples: Examples): { wire: Wire; transfer: ArrayBuffer[] } {
  const width = examples.x[0]?.length ?? 0;
  if (examples.x.length !== examples.y.length || examples.x.some((r) => r.length !== width)) {
    return { wire: { plain: examples }, transfer: [] };
  }
  const xs = new ArrayBuffer(examples.x.length * width * Float64Array.BYTES_PER_ELEMENT);
  const ys = new ArrayBuffer(examples.y.length * Float64Array.BYTES_PER_ELEMENT);
  const x = new Float64Array(xs);
  examples.x.forEach((row, i) => x.set(row, i * width));
  new Float64Array(ys).set(examples.y);
  return { wire: { packed: { width, x, y: new Float64Array(ys) } }, transfer: [xs, ys] };
}

function unpack({ width, x, y }: PackedExamples): Examples {
  const rows: number[][] = [];
  for (let i = 0; i < y.length; i++) rows.push(Array.from(x.subarray(i * width, (i + 1) * width)));
  return { x: rows, y: Array.from(y) };
}

/** What a training node needs of training: here or on a thread, the same answers. */
export interface Trainer {
  trainLocal(input: LocalTrainingInput): Promise<TrainingResult>;
  evaluate(preset: ModelPreset, weights: Float32Array, examples: Examples): Promise<Evaluation>;
}

/** Answers `request` with `trainer` (the training module itself, on the thread that runs it). */
export function perform(
  trainer: Trainer,
  request: TrainingRequest,
): Promise<TrainingResult | Evaluation> {
  if (request.kind === 'train') return trainer.trainLocal(request.input);
  const { preset, weights, examples } = request.input;
  return trainer.evaluate(preset, weights, examples);
}
