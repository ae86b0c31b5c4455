// The body of a training thread (training-thread.ts): local training and evaluation, one
// request at a time, off the thread that serves the API.
import { parentPort } from 'node:worker_threads';
import { evaluate, trainLocal } from './train';
import type { TrainingRequest, TrainingResponse } from './training-thread';

async function answer(request: TrainingRequest): Promise<TrainingResponse> {
  try {
    if (request.kind === 'train') {
      const result = await trainLocal(request.input);
      return { id: request.id, ok: true, kind: 'train', result };
    }
    const { preset, weights, examples } = request.input;
    return {
      id: request.id,
      ok: true,
      kind: 'evaluate',
      result: await evaluate(preset, weights, examples),
    };
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return { id: request.id, ok: false, error: { name: error.name, message: error.message } };
  }
}

parentPort?.on('message', (request: TrainingRequest) => {
  void answer(request).then((response) => {
    const transfer =
      response.ok && response.kind === 'train' ? [response.result.weights.buffer] : [];
    parentPort!.postMessage(response, transfer as ArrayBuffer[]);
  });
});
