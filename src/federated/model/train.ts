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
  const y = tf.tensor1d(examples.y, 'float32');
  // The proximal term's anchor: the global model, as constants beside each variable.
  const anchors = mu > 0 ? variablesOf(network).map((v) => tf.clone(v)) : [];
  const optimizer = tf.train.sgd(learningRate);
  const rng = seededGenerator(seed, SHUFFLE_STREAM);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(n, rng);
      for (let start = 0; start < n; start += batchSize) {
        const batch = order.subarray(start, Math.min(start + batchSize, n));
        tf.tidy(() => {
          const indices = tf.tensor1d(batch, 'int32');
          const xb = tf.gather(x, indices);
          const yb = tf.gather(y, indices);
          optimizer.minimize(
            () => localLoss(network, xb, yb, anchors, mu),
            false,
            variablesOf(network),
          );
        });
        // Lets an in-process node share the event loop with the API between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    const weights = flatten(network);
    if (!weights.every(Number.isFinite)) {
      throw new RangeError('training diverged: lower the learning rate');
    }
    const loss = meanLogLoss(scoresOf(network, x), examples.y);
    return { weights, numExamples: n, metrics: { loss } };
  } finally {
    optimizer.dispose();
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

/** Mean log loss from logits, plus (μ/2)·‖w − w_global‖² when μ > 0. */
function localLoss(
  network: DenseNetwork,
  x: tf.Tensor2D,
  y: tf.Tensor1D,
  anchors: tf.Tensor[],
  mu: number,
): tf.Scalar {
  const logLoss = meanLogLossOfLogits(logits(network, x), y);
  if (mu === 0) return logLoss;
  const distance = tf.addN(
    variablesOf(network).map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]))),
  );
  return tf.add(logLoss, tf.mul(mu / 2, distance)) as tf.Scalar;
}

/**
 * The mean log loss of logits z for labels y: max(z, 0) − y·z + log(1 + e^−|z|), σ and log
 * together, finite for any z. Its gradient is given in closed form, (σ(z) − y) / n, exactly
 * what differentiating the expression gives: three kernels where the tape would run about
 * twenty, which on a small model is most of a training step.
 */
const meanLogLossOfLogits = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [z, y, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([z, y]);
  const value = tf.mean(
    tf.add(tf.sub(tf.relu(z), tf.mul(y, z)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))),
  );
  return {
    value,
    gradFunc: (dy: tf.Tensor, [savedZ, savedY]: tf.Tensor[]) => [
      tf.mul(dy, tf.div(tf.sub(tf.sigmoid(savedZ), savedY), savedZ.size)),
      tf.zerosLike(savedY),
    ],
  };
}) as (z: tf.Tensor1D, y: tf.Tensor1D) => tf.Scalar;

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
