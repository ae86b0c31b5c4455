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
