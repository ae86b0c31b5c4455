// Using a trained model on one patient: the network the nodes trained, on the backend they
// chose (initTensorFlow), answering the probability of the label. Deterministic for a given
// backend: the same standardised inputs always give the same probability.
import * as tf from '@tensorflow/tfjs';
import type { ModelPreset } from './architecture';
import { initTensorFlow } from './backend';
import { createNetwork, type DenseNetwork, disposeNetwork, logits } from './model';

/** A model ready to answer; it owns TF.js variables for as long as it lives (see dispose). */
export interface PredictiveModel {
  readonly preset: ModelPreset;
  readonly numFeatures: number;
  /** P(label) for one row of standardised features. */
  probability(x: readonly number[]): number;
  dispose(): void;
}

export async function loadPredictiveModel(
  preset: ModelPreset,
  numFeatures: number,
  weights: Float32Array,
): Promise<PredictiveModel> {
  await initTensorFlow();
  const network: DenseNetwork = createNetwork(preset, numFeatures, weights);
  return {
    preset,
    numFeatures,
    probability(x) {
      if (x.length !== numFeatures || !x.every(Number.isFinite)) {
        throw new RangeError(`the model takes ${numFeatures} finite inputs, got ${x.length}`);
      }
      return tf.tidy(() => tf.sigmoid(logits(network, tf.tensor2d([[...x]]))).dataSync()[0]);
    },
    dispose: () => disposeNetwork(network),
  };
}
