import * as tf from '@tensorflow/tfjs';
import { initialWeights } from './architecture';
import { exportModel } from './export';
import { createNetwork, disposeNetwork, logits } from './model';

describe('exported models', () => {
  it.each(['LOGISTIC', 'MLP'] as const)(
    'load in TensorFlow.js and answer the probabilities the network gives (%s)',
    async (preset) => {
      const features = ['2345-7', '4548-4', '39156-5'];
      const weights = initialWeights(preset, features.length, 5);
      // A non-zero bias and kernel, so that the check means something for LOGISTIC too.
      weights.forEach((_, i) => (weights[i] += 0.01 * (i + 1)));
      const exported = await exportModel(preset, features, '44054006', weights);
      expect(exported.userDefinedMetadata.features.map((f) => f.code)).toEqual(features);

      const model = await tf.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: exported.modelTopology as tf.io.ModelJSON['modelTopology'],
          weightSpecs: exported.weightsManifest[0].weights,
          weightData: new Uint8Array(Buffer.from(exported.weightData, 'base64')).buffer,
        }),
      );
      const x = [
        [0.5, -1, 2],
        [0, 0, 0],
      ];
      const input = tf.tensor2d(x);
      const predicted = (model.predict(input) as tf.Tensor).dataSync();
      const network = createNetwork(preset, features.length, weights);
      const expected = tf.tidy(() => tf.sigmoid(logits(network, input)).dataSync());
      expect([...predicted].map((v) => v.toFixed(5))).toEqual(
        [...expected].map((v) => v.toFixed(5)),
      );
      input.dispose();
      model.dispose();
      disposeNetwork(network);
    },
  );
});
