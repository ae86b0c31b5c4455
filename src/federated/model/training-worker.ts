// The body of a training thread (training-thread.ts): local training and evaluation, off the
// thread that serves the API. Requests are taken as they come and train in turns, batch by
// batch, as they did on the API's thread.
import { parentPort } from 'node:worker_threads';
import * as train from './train';
import {
  fromWire,
  perform,
  TrainingRequest,
  TrainingResponse,
  WireRequest,
} from './training-request';

async function answer(request: TrainingRequest): Promise<TrainingResponse> {
  try {
    const result = await perform(train, request);
    return { id: request.id, ok: true, kind: request.kind, result } as TrainingResponse;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return { id: request.id, ok: false, error: { name: error.name, message: error.message } };
  }
}

parentPort?.on('message', (wire: WireRequest) => {
  void answer(fromWire(wire)).then((response) => {
    const transfer =
      response.ok && response.kind === 'train' ? [response.result.weights.buffer] : [];
    parentPort!.postMessage(response, transfer as ArrayBuffer[]);
  });
});
