import * as tf from '@tensorflow/tfjs';
import { initialWeights, parameterCount } from './architecture';
import { initTensorFlow } from './backend';
import { createNetwork, disposeNetwork, flatten, load, logits, type DenseNetwork } from './model';

const relu = (v: number) => Math.max(v, 0);

function scoresOf(network: DenseNetwork, rows: number[][]): number[] {
  const scores = tf.tidy(() => logits(network, tf.tensor2d(rows)));
  const values = Array.from(scores.dataSync());
  scores.dispose();
  return values;
}

/** The MLP's logit for one row, from flat weights, in float64. */
function mlpLogit(w: Float32Array, row: number[]): number {
  const d = row.length;
  const hidden = Array.from({ length: 16 }, (_, j) =>
    relu(row.reduce((sum, x, i) => sum + x * w[i * 16 + j], w[d * 16 + j])),
  );
  const out = d * 16 + 16;
  return hidden.reduce((sum, h, j) => sum + h * w[out + j], w[out + 16]);
}

describe('initialising TensorFlow.js', () => {
  it('picks a backend once, reports it, and returns the same choice on every call', async () => {
    const [first, second] = await Promise.all([initTensorFlow(), initTensorFlow()]);
    expect(second).toBe(first);
    expect(await initTensorFlow()).toBe(first);
    expect(['tensorflow', 'wasm', 'cpu']).toContain(first.backend);
    expect(tf.getBackend()).toBe(first.backend);
    // Each faster backend it passed over comes with a reason.
    const order = ['tensorflow', 'wasm', 'cpu'];
    expect(first.unavailable.map((u) => u.backend)).toEqual(
      order.slice(0, order.indexOf(first.backend)),
    );
  });
});

describe('a dense network', () => {
  beforeAll(() => initTensorFlow());

  it('flattens to exactly the weights it was created from', () => {
    for (const preset of ['LOGISTIC', 'MLP'] as const) {
      const weights = Float32Array.from({ length: parameterCount(preset, 6) }, (_, i) =>
        Math.fround(Math.sin(i + 1)),
      );
      const network = createNetwork(preset, 6, weights);
      expect(flatten(network)).toEqual(weights);
      disposeNetwork(network);
    }
  });

  it('starts from the seeded initial weights when given a seed', () => {
    const network = createNetwork('MLP', 4, { seed: 11 });
    expect(flatten(network)).toEqual(initialWeights('MLP', 4, 11));
    disposeNetwork(network);
  });

  it('loads a flat vector in place and flattens it back unchanged', () => {
    const network = createNetwork('MLP', 5, { seed: 1 });
    const other = Float32Array.from({ length: parameterCount('MLP', 5) }, (_, i) => Math.sin(i));
    load(network, other);
    expect(flatten(network)).toEqual(other);
    expect(() => load(network, new Float32Array(3))).toThrow(RangeError);
    disposeNetwork(network);
  });

  it('computes the logits of dense(16, relu) → dense(1) from the flat layout', () => {
    const weights = Float32Array.from({ length: parameterCount('MLP', 3) }, (_, i) =>
      Math.fround(Math.cos(i * 0.7) / 2),
    );
    const rows = [
      [0.5, -1, 2],
      [-0.3, 0.8, 0.1],
      [0, 0, 0],
    ];
    const network = createNetwork('MLP', 3, weights);
    const scores = scoresOf(network, rows);
    rows.forEach((row, i) => expect(scores[i]).toBeCloseTo(mlpLogit(weights, row), 5));
    disposeNetwork(network);
  });

  it('computes a logistic regression’s logit as weights · features + bias', () => {
    const network = createNetwork('LOGISTIC', 2, Float32Array.of(2, -1, 0.5));
    const scores = scoresOf(network, [[1, 3]]);
    expect(scores[0]).toBeCloseTo(2 - 3 + 0.5, 6);
    disposeNetwork(network);
  });

  it('refuses weights of the wrong length', () => {
    expect(() => createNetwork('LOGISTIC', 3, new Float32Array(3))).toThrow(/4 parameters/);
  });

  it('leaves no tensor behind once disposed', () => {
    expect(tf.memory().numTensors).toBe(0);
    const before = tf.memory().numTensors;
    const network = createNetwork('MLP', 6, { seed: 2 });
    load(network, initialWeights('MLP', 6, 5));
    flatten(network);
    scoresOf(network, [[1, 2, 3, 4, 5, 6]]);
    disposeNetwork(network);
    expect(tf.memory().numTensors).toBe(before);
  });
});
