import * as tf from '@tensorflow/tfjs';
import { initialWeights } from './architecture';
import { initTensorFlow } from './backend';
import { createNetwork, disposeNetwork, flatten, logits, variablesOf } from './model';
import {
  evaluate,
  trainCentralised,
  trainLocal,
  type Examples,
  type LocalTrainingInput,
} from './train';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Two features, labels from a noisy linear rule: learnable, not separable. */
function toyExamples(n: number): Examples {
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.sin(i * 1.3);
    const b = Math.cos(i * 0.7);
    x.push([a, b]);
    y.push(a - 0.5 * b + 0.4 * Math.sin(i * 5.1) > 0 ? 1 : 0);
  }
  return { x, y };
}

const FEATURES = ['2345-7', '4548-4'];
const examples = toyExamples(120);
const base: LocalTrainingInput = {
  preset: 'LOGISTIC',
  features: FEATURES,
  globalWeights: Float32Array.of(0.3, -0.2, 0.1),
  examples,
  epochs: 3,
  batchSize: 16,
  learningRate: 0.5,
  seed: 9,
};

const distance = (a: Float32Array, b: Float32Array) =>
  Math.sqrt(a.reduce((sum, v, i) => sum + (v - b[i]) ** 2, 0));

describe('local training', () => {
  beforeAll(() => initTensorFlow());

  it('takes exactly the SGD steps of the mean log loss plus FedProx’s (μ/2)·‖w − w_global‖²', async () => {
    const mu = 0.7;
    const learningRate = 0.4;
    const global = [0.3, -0.2, 0.1];
    // Full batches, so that the visiting order does not matter: the reference in float64.
    let w = global.slice();
    for (let step = 0; step < 4; step++) {
      const gradient = [0, 0, 0];
      examples.x.forEach(([a, b], i) => {
        const error = sigmoid(w[0] * a + w[1] * b + w[2]) - examples.y[i];
        gradient[0] += (error * a) / examples.x.length;
        gradient[1] += (error * b) / examples.x.length;
        gradient[2] += error / examples.x.length;
      });
      w = w.map((v, k) => v - learningRate * (gradient[k] + mu * (v - global[k])));
    }
    const { weights } = await trainLocal({
      ...base,
      globalWeights: Float32Array.from(global),
      epochs: 4,
      batchSize: examples.x.length,
      learningRate,
      mu,
    });
    Array.from(weights).forEach((v, k) => expect(v).toBeCloseTo(w[k], 5));
  });

  it('takes the steps that TF.js’s tape and SGD take, through the MLP’s relu layer too', async () => {
    // The reference: the loss written out and differentiated by the tape, stepped by
    // tf.train.sgd. Full batches, so that the visiting order does not matter.
    const mu = 0.3;
    const learningRate = 0.2;
    const global = initialWeights('MLP', 2, 5);
    const network = createNetwork('MLP', 2, global);
    const anchors = variablesOf(network).map((v) => tf.clone(v));
    const optimizer = tf.train.sgd(learningRate);
    const x = tf.tensor2d(examples.x);
    const y = tf.tensor1d(examples.y);
    for (let step = 0; step < 6; step++) {
      optimizer.minimize(
        () => {
          const z = logits(network, x);
          const logLoss = tf.mean(
            tf.add(tf.sub(tf.relu(z), tf.mul(y, z)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))),
          );
          const proximal = tf.addN(
            variablesOf(network).map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]))),
          );
          return tf.add(logLoss, tf.mul(mu / 2, proximal)) as tf.Scalar;
        },
        false,
        variablesOf(network),
      );
    }
    const expected = flatten(network);
    optimizer.dispose();
    tf.dispose([x, y, ...anchors]);
    disposeNetwork(network);

    const { weights } = await trainLocal({
      ...base,
      preset: 'MLP',
      globalWeights: global,
      epochs: 6,
      batchSize: examples.x.length,
      learningRate,
      mu,
    });
    // Some coordinates move by 0.1 or more over the six steps: a wrong gradient shows.
    expect(distance(weights, global)).toBeGreaterThan(0.1);
    Array.from(weights).forEach((v, k) => expect(v).toBeCloseTo(expected[k], 5));
  });

  it('gives the same weights for the same inputs and seed, and others for another seed', async () => {
    const a = await trainLocal(base);
    const b = await trainLocal(base);
    const c = await trainLocal({ ...base, seed: 10 });
    expect(b.weights).toEqual(a.weights);
    expect(c.weights).not.toEqual(a.weights);
  });

  it('lowers the loss, and reports it on the returned weights with the number of examples', async () => {
    const start = await evaluate('LOGISTIC', base.globalWeights, examples);
    const result = await trainLocal(base);
    const end = await evaluate('LOGISTIC', result.weights, examples);
    expect(result.numExamples).toBe(120);
    expect(result.metrics.loss).toBeCloseTo(end.loss, 5);
    expect(end.loss).toBeLessThan(start.loss);
    expect(end.auc).toBeGreaterThan(0.9);
  });

  it('treats μ = 0 as plain FedAvg, and keeps the local model nearer the global one as μ grows', async () => {
    const plain = await trainLocal(base);
    expect((await trainLocal({ ...base, mu: 0 })).weights).toEqual(plain.weights);
    const pulled = await trainLocal({ ...base, mu: 0.5 });
    const held = await trainLocal({ ...base, mu: 2 });
    const moved = (w: Float32Array) => distance(w, base.globalWeights);
    expect(moved(pulled.weights)).toBeLessThan(moved(plain.weights));
    expect(moved(held.weights)).toBeLessThan(moved(pulled.weights));
  });

  it('trains the MLP too', async () => {
    const result = await trainCentralised({ ...base, preset: 'MLP', epochs: 10 });
    expect(result.weights).toHaveLength(2 * 16 + 16 + 16 + 1);
    expect((await evaluate('MLP', result.weights, examples)).auc).toBeGreaterThan(0.9);
  });

  it('starts centralised training from the seeded initial weights', async () => {
    const settings = { ...base, preset: 'MLP' as const, seed: 4 };
    const centralised = await trainCentralised(settings);
    const local = await trainLocal({ ...settings, globalWeights: initialWeights('MLP', 2, 4) });
    expect(centralised.weights).toEqual(local.weights);
  });

  it('leaves no tensor behind, whether training succeeds or diverges', async () => {
    const before = tf.memory().numTensors;
    await trainLocal({ ...base, mu: 0.1 });
    await trainCentralised({ ...base, preset: 'MLP' });
    await evaluate('MLP', initialWeights('MLP', 2, 1), examples);
    // Gradients of 1e30 times a learning rate of 1e10 overflow float32.
    const huge = { x: [[1e30, 1e30]], y: [0] };
    await expect(trainLocal({ ...base, examples: huge, learningRate: 1e10 })).rejects.toThrow(
      /diverged/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses settings and examples it cannot train on', async () => {
    const bad: Partial<LocalTrainingInput>[] = [
      { epochs: 0 },
      { batchSize: 0 },
      { learningRate: 0 },
      { mu: -1 },
      { mu: 4 }, // with the learning rate of 0.5, the proximal step alone would diverge
      { seed: -1 },
      { globalWeights: new Float32Array(5) },
      { features: ['2345-7'] },
      { examples: { x: [], y: [] } },
      { examples: { x: [[0, 1]], y: [2] } },
      { examples: { x: [[0, NaN]], y: [1] } },
      { examples: { x: [[0, 1], [1]], y: [1, 0] } },
    ];
    for (const change of bad) {
      await expect(trainLocal({ ...base, ...change })).rejects.toThrow(RangeError);
    }
  });
});

describe('evaluation', () => {
  it('reports loss, accuracy at 0.5 and the exact AUC of the weights', async () => {
    const data = { x: [[-2], [-1], [1], [2], [0.5]], y: [0, 1, 0, 1, 1] };
    const result = await evaluate('LOGISTIC', Float32Array.of(1, 0), data);
    // Logits equal the feature: positives at −1, 2, 0.5 against negatives at −2, 1.
    expect(result.auc).toBeCloseTo(4 / 6, 12);
    expect(result.accuracy).toBeCloseTo(3 / 5, 12);
    const loss =
      data.x.reduce((s, [z], i) => s - Math.log(data.y[i] ? sigmoid(z) : 1 - sigmoid(z)), 0) / 5;
    expect(result.loss).toBeCloseTo(loss, 6);
  });

  it('refuses weights that do not fit the preset and the examples', async () => {
    await expect(evaluate('LOGISTIC', new Float32Array(5), examples)).rejects.toThrow(RangeError);
  });
});
