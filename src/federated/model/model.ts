// A preset as TF.js variables: a small stack of dense layers, loaded from and flattened to the
// flat Float32Array that travels between nodes and coordinator (layout in architecture.ts).
// Plain variables rather than tf.layers: the layout stays explicit, and there is no global
// layer-name registry or optimizer state hidden in a Keras model.
import * as tf from '@tensorflow/tfjs';
import {
  initialWeights,
  layerShapes,
  layerSlices,
  parameterCount,
  type DenseLayerShape,
  type ModelPreset,
} from './architecture';

export interface DenseLayer {
  readonly shape: DenseLayerShape;
  readonly kernel: tf.Variable<tf.Rank.R2>;
  readonly bias: tf.Variable<tf.Rank.R1>;
}

/** A preset's layers, input to output; owns its variables until `disposeNetwork`. */
export interface DenseNetwork {
  readonly preset: ModelPreset;
  readonly numFeatures: number;
  readonly layers: readonly DenseLayer[];
}

/**
 * A network holding `weights`, or the preset's seeded initial weights when given a seed.
 * Call after `initTensorFlow()`: the variables live on the backend current at creation.
 */
export function createNetwork(
  preset: ModelPreset,
  numFeatures: number,
  weights: Float32Array | { seed: number },
): DenseNetwork {
  const flat =
    weights instanceof Float32Array ? weights : initialWeights(preset, numFeatures, weights.seed);
  checkLength(preset, numFeatures, flat);
  const slices = layerSlices(preset, numFeatures);
  const layers = layerShapes(preset, numFeatures).map((shape, l) => {
    const { kernel, bias } = slices[l];
    return {
      shape,
      // A variable shares its initial tensor's data; tidy then releases the tensor itself.
      kernel: tf.tidy(() =>
        tf.variable(tf.tensor2d(slice(flat, kernel.offset, kernel.shape), kernel.shape)),
      ),
      bias: tf.tidy(() => tf.variable(tf.tensor1d(slice(flat, bias.offset, bias.shape)))),
    };
  });
  return { preset, numFeatures, layers };
}

/** The network's parameters as one flat vector, in the fixed layer order. */
export function flatten(network: DenseNetwork): Float32Array {
  const flat = new Float32Array(parameterCount(network.preset, network.numFeatures));
  const slices = layerSlices(network.preset, network.numFeatures);
  network.layers.forEach((layer, l) => {
    flat.set(layer.kernel.dataSync(), slices[l].kernel.offset);
    flat.set(layer.bias.dataSync(), slices[l].bias.offset);
  });
  return flat;
}

/** Overwrites the network's parameters with `flat`, laid out as `flatten` returns them. */
export function load(network: DenseNetwork, flat: Float32Array): void {
  checkLength(network.preset, network.numFeatures, flat);
  const slices = layerSlices(network.preset, network.numFeatures);
  tf.tidy(() => {
    network.layers.forEach((layer, l) => {
      const { kernel, bias } = slices[l];
      layer.kernel.assign(tf.tensor2d(slice(flat, kernel.offset, kernel.shape), kernel.shape));
      layer.bias.assign(tf.tensor1d(slice(flat, bias.offset, bias.shape)));
    });
  });
}

/** The trainable variables, in the fixed layer order. */
export function variablesOf(network: DenseNetwork): tf.Variable[] {
  return network.layers.flatMap((layer) => [layer.kernel, layer.bias]);
}

/**
 * The log-odds of the label for each row of `x` ([examples, features] → [examples]). The
 * sigmoid is left to the loss and the metrics, which are exact from logits where
 * probabilities would saturate.
 */
export function logits(network: DenseNetwork, x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    let h: tf.Tensor2D = x;
    for (const { shape, kernel, bias } of network.layers) {
      h = tf.add(tf.matMul(h, kernel), bias);
      if (shape.activation === 'relu') h = tf.relu(h);
    }
    return tf.reshape(h, [-1]) as tf.Tensor1D;
  });
}

export function disposeNetwork(network: DenseNetwork): void {
  for (const v of variablesOf(network)) v.dispose();
}

function checkLength(preset: ModelPreset, numFeatures: number, flat: Float32Array): void {
  const expected = parameterCount(preset, numFeatures);
  if (flat.length !== expected) {
    throw new RangeError(
      `a ${preset} model on ${numFeatures} features has ${expected} parameters, got ${flat.length}`,
    );
  }
}

function slice(flat: Float32Array, offset: number, shape: number[]): Float32Array {
  return flat.subarray(offset, offset + shape.reduce((a, b) => a * b, 1));
}
