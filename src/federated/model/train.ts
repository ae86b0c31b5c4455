// Local training of one node, the centralised reference on pooled data, and evaluation.
//
// The local solver is plain minibatch SGD, as in FedAvg (McMahan et al. 2017) and FedProx
// (Li et al. 2020): it keeps no state between rounds, so every round starts from exactly the
// global model and nothing else, and a study's learning rate means the same at every node.
// Adam's moments would restart at zero each round (or leak one round into the next) and its
// per-coordinate step sizes make the proximal term's pull uneven.
//
// Deterministic: the same inputs and seed give the same weights on the same backend. The
// visiting order comes from a seeded PRNG, and the cpu and wasm backends (wasm runs
// single-threaded in Node) sum in a fixed order. Across backends the last float32 bits differ,
// as their kernels sum in different orders; tfjs-node's multi-threaded TensorFlow kernels are
// not promised to be bit-reproducible even run to run.
import * as tf from '@tensorflow/tfjs';
import { initialWeights, parameterCount, type ModelPreset } from './architecture';
import { initTensorFlow } from './backend';
import { accuracy, meanLogLoss, rocAuc } from './metrics';
import {
  createNetwork,
  disposeNetwork,
  flatten,
  logits,
  variablesOf,
  type DenseNetwork,
} from './model';
import { checkSeed, permutation, seededGenerator } from './prng';

/** Standardised feature rows and their 0/1 labels, as features.ts builds them. */
export interface Examples {
  x: number[][];
  y: number[];
}

export interface TrainingSettings {
  preset: ModelPreset;
  /** The study's ordered feature codes; only their number is used, to check shapes. */
  features: readonly string[];
  examples: Examples;
  /** Passes over the examples. */
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Seeds the order examples are visited in (and, centralised, the initial weights). */
  seed: number;
}

export interface LocalTrainingInput extends TrainingSettings {
  /** The round's global model; training starts from it. */
  globalWeights: Float32Array;
  /** FedProx's μ: adds (μ/2)·‖w − w_global‖² to the loss. 0 or absent is plain FedAvg. */
  mu?: number;
}

export interface TrainingResult {
  weights: Float32Array;
  numExamples: number;
  /** `loss`: the mean log loss of the returned weights on the training examples (no proximal term). */
  metrics: { loss: number };
}

export interface Evaluation {
  /** Mean binary cross-entropy (natural log). */
  loss: number;
  /** At a threshold of 0.5. */
  accuracy: number;
  /** Exact ROC AUC; NaN when the examples hold only one class. */
  auc: number;
}

const SHUFFLE_STREAM = 0x73687566; // "shuf"

/** Trains from the global model on this node's examples and returns the full local model. */
export async function trainLocal(input: LocalTrainingInput): Promise<TrainingResult> {
  const { preset, features, globalWeights, examples, epochs, batchSize, learningRate, seed } =
    input;
  const mu = input.mu ?? 0;
  checkSettings(input);
  if (!(mu >= 0) || !Number.isFinite(mu)) {
    throw new RangeError(`mu must be a finite number ≥ 0, got ${mu}`);
  }
  // Each step scales w − w_global by (1 − learningRate·μ) before the data's gradient: from 2
  // on, the proximal term alone makes the weights oscillate with growing amplitude.
  if (learningRate * mu >= 2) {
    throw new RangeError(
      `learningRate × mu must be below 2 for the proximal term to converge, got ${learningRate * mu}`,
    );
  }
  const expected = parameterCount(preset, features.length);
  if (globalWeights.length !== expected) {
    throw new RangeError(
      `the global model has ${globalWeights.length} parameters, expected ${expected}`,
    );
  }
  await initTensorFlow();

  const n = examples.y.length;
  const network = createNetwork(preset, features.length, globalWeights);
  const x = tf.tensor2d(examples.x, [n, features.length], 'float32');
  // A column, as the network's output is: the step's error needs no reshape.
  const y = tf.tensor2d(examples.y, [n, 1], 'float32');
  // The proximal term's anchor: the global model, as constants beside each variable.
  const anchors = mu > 0 ? variablesOf(network).map((v) => tf.clone(v)) : [];
  const step = sgdStep(network, anchors, mu, learningRate);
  const rng = seededGenerator(seed, SHUFFLE_STREAM);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      // The epoch's order at once: a batch is then a slice, two kernels where gathering
      // each batch took three and an upload.
      const [xs, ys] = tf.tidy(() => {
        const order = tf.tensor1d(permutation(n, rng), 'int32');
        return [tf.gather(x, order), tf.gather(y, order)];
      });
      try {
        for (let start = 0; start < n; start += batchSize) {
          const size = Math.min(batchSize, n - start);
          tf.tidy(() =>
            step(
              tf.slice(xs, [start, 0], [size, features.length]),
              tf.slice(ys, [start, 0], [size, 1]),
            ),
          );
          // Lets an in-process node share the event loop with the API between batches.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } finally {
        tf.dispose([xs, ys]);
      }
    }
    const weights = flatten(network);
    if (!weights.every(Number.isFinite)) {
      throw new RangeError('training diverged: lower the learning rate');
    }
    const loss = meanLogLoss(scoresOf(network, x), examples.y);
    return { weights, numExamples: n, metrics: { loss } };
  } finally {
    step.dispose();
    tf.dispose([x, y, ...anchors]);
    disposeNetwork(network);
  }
}

/**
 * The reference for federated runs: the same training on all sites' examples pooled, from the
 * preset's initial weights for `seed` — what a federation approximates without pooling data.
 */
export function trainCentralised(settings: TrainingSettings): Promise<TrainingResult> {
  const globalWeights = initialWeights(settings.preset, settings.features.length, settings.seed);
  return trainLocal({ ...settings, globalWeights, mu: 0 });
}

/** Loss, accuracy and exact AUC of `weights` on `examples`. */
export async function evaluate(
  preset: ModelPreset,
  weights: Float32Array,
  examples: Examples,
): Promise<Evaluation> {
  const numFeatures = checkExamples(examples);
  await initTensorFlow();
  const network = createNetwork(preset, numFeatures, weights);
  const x = tf.tensor2d(examples.x, [examples.y.length, numFeatures], 'float32');
  try {
    const scores = scoresOf(network, x);
    return {
      loss: meanLogLoss(scores, examples.y),
      accuracy: accuracy(scores, examples.y),
      auc: rocAuc(scores, examples.y),
    };
  } finally {
    x.dispose();
    disposeNetwork(network);
  }
}

/** The network's logits for `x`, read back from the backend. */
function scoresOf(network: DenseNetwork, x: tf.Tensor2D): Float32Array {
  const scores = logits(network, x);
  try {
    return scores.dataSync() as Float32Array;
  } finally {
    scores.dispose();
  }
}

/** One SGD step on a batch, in place; `dispose` frees what the steps share. */
type SgdStep = ((xb: tf.Tensor2D, yb: tf.Tensor2D) => void) & { dispose(): void };

/**
 * SGD on the mean log loss of the network's logits z for labels y (max(z, 0) − y·z +
 * log(1 + e^−|z|), averaged over the batch), plus FedProx's (μ/2)·‖w − w_global‖² when
 * μ > 0, with the gradient written out rather than taped: ∂loss/∂z = (σ(z) − y) / n,
 * backpropagated through the dense layers (a relu passes it where its input was > 0), plus
 * μ·(w − w_global) for the proximal term. The step −rate·gradient is backpropagated
 * directly, −rate/n folded into the output's error, so that each variable then moves by one
 * addition. The same steps as TF.js's tape and tf.train.sgd take (train.spec.ts holds the
 * two together to float32 rounding) in about half the kernels: on a small model a step is
 * kernel dispatch, not arithmetic (a 6-parameter logistic model took 23 ms to train on 590
 * examples for 3 epochs; 9 ms this way).
 */
function sgdStep(
  network: DenseNetwork,
  anchors: readonly tf.Tensor[],
  mu: number,
  learningRate: number,
): SgdStep {
  const variables = variablesOf(network);
  /** −rate/n for a batch of n, made once per batch size (a training has two at most). */
  const errorScales = new Map<number, tf.Scalar>();
  const errorScale = (n: number) => {
    let scale = errorScales.get(n);
    if (!scale) {
      scale = tf.keep(tf.scalar(-learningRate / n));
      errorScales.set(n, scale);
    }
    return scale;
  };
  const proximalScale = mu > 0 ? tf.scalar(-learningRate * mu) : null;
  const run = (xb: tf.Tensor2D, yb: tf.Tensor2D) => {
    // Forward, keeping what the backward pass reads: each layer's input and pre-activation.
    const inputs: tf.Tensor2D[] = [];
    const preActivations: tf.Tensor2D[] = [];
    let h = xb;
    for (const { shape, kernel, bias } of network.layers) {
      inputs.push(h);
      const z = tf.add<tf.Tensor2D>(tf.matMul(h, kernel), bias);
      preActivations.push(z);
      h = shape.activation === 'relu' ? tf.relu(z) : z;
    }
    // Backward, output to input; every step is taken before any variable moves.
    const steps: tf.Tensor[] = new Array(variables.length);
    let dz = tf.mul<tf.Tensor2D>(tf.sub(tf.sigmoid(h), yb), errorScale(xb.shape[0]));
    for (let l = network.layers.length - 1; l >= 0; l--) {
      steps[2 * l] = tf.matMul(inputs[l], dz, true, false);
      steps[2 * l + 1] = tf.sum(dz, 0);
      if (l === 0) break;
      const dh = tf.matMul(dz, network.layers[l].kernel, false, true) as tf.Tensor2D;
      dz =
        network.layers[l - 1].shape.activation === 'relu'
          ? tf.mul<tf.Tensor2D>(dh, tf.step(preActivations[l - 1]))
          : dh;
    }
    variables.forEach((v, i) => {
      const moved = tf.add(v, steps[i]);
      v.assign(proximalScale ? tf.add(moved, tf.mul(tf.sub(v, anchors[i]), proximalScale)) : moved);
    });
  };
  return Object.assign(run, {
    dispose: () => tf.dispose([...errorScales.values(), ...(proximalScale ? [proximalScale] : [])]),
  });
}

function checkSettings(settings: TrainingSettings): void {
  const numFeatures = checkExamples(settings.examples);
  if (numFeatures !== settings.features.length) {
    throw new RangeError(
      `examples have ${numFeatures} features, the study ${settings.features.length}`,
    );
  }
  if (!Number.isInteger(settings.epochs) || settings.epochs < 1) {
    throw new RangeError(`epochs must be a whole number ≥ 1, got ${settings.epochs}`);
  }
  if (!Number.isInteger(settings.batchSize) || settings.batchSize < 1) {
    throw new RangeError(`batchSize must be a whole number ≥ 1, got ${settings.batchSize}`);
  }
  if (!(settings.learningRate > 0) || !Number.isFinite(settings.learningRate)) {
    throw new RangeError(`learningRate must be a positive number, got ${settings.learningRate}`);
  }
  checkSeed(settings.seed);
}

/** Checks that the examples are a non-empty rectangle of finite values with 0/1 labels. */
function checkExamples({ x, y }: Examples): number {
  if (x.length !== y.length)
    throw new RangeError(`${x.length} feature rows for ${y.length} labels`);
  if (x.length === 0) throw new RangeError('there are no examples');
  const width = x[0].length;
  x.forEach((row, i) => {
    if (row.length !== width)
      throw new RangeError(`row ${i} has ${row.length} features, not ${width}`);
    if (!row.every(Number.isFinite))
      throw new RangeError(`row ${i} has a value that is not finite`);
    if (y[i] !== 0 && y[i] !== 1) throw new RangeError(`label ${i} is not 0 or 1`);
  });
  return width;
}
