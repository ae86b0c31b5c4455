// Without the WebAssembly backend (and, here, without tfjs-node's addon), TF.js still runs on
// its plain JavaScript backend, and so does training.
import * as tf from '@tensorflow/tfjs';
import { initTensorFlow } from './backend';
import { evaluate, trainCentralised } from './train';

jest.mock(
  '@tensorflow/tfjs-node',
  () => {
    throw new Error('no native addon here');
  },
  { virtual: true },
);
jest.mock('@tensorflow/tfjs-backend-wasm', () => ({
  setWasmPaths: () => {
    throw new Error('no WebAssembly here');
  },
}));

describe('initialising TensorFlow.js without the WebAssembly backend', () => {
  it('falls back to the cpu backend and says why', async () => {
    const runtime = await initTensorFlow();
    expect(runtime.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(runtime.unavailable).toEqual([
      { backend: 'tensorflow', reason: 'no native addon here' },
      { backend: 'wasm', reason: 'no WebAssembly here' },
    ]);
  });

  it('still trains', async () => {
    const examples = { x: [[-2], [-1], [1], [2], [-0.5], [0.5]], y: [0, 0, 1, 1, 1, 0] };
    const settings = {
      features: ['2345-7'],
      examples,
      epochs: 20,
      batchSize: 2,
      learningRate: 0.5,
    };
    const { weights } = await trainCentralised({ ...settings, preset: 'LOGISTIC', seed: 1 });
    expect((await evaluate('LOGISTIC', weights, examples)).auc).toBeGreaterThan(0.8);
    expect(tf.memory().numTensors).toBe(0);
  });
});
