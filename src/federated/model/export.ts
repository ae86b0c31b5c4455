// A global model as TensorFlow.js's own format: the layers' topology, their weights, and what
// a consumer needs to prepare inputs the same way the nodes did. The weights are embedded as
// base64 (`weightData`: one self-contained file, for `tf.io.fromMemory`) and also named in the
// manifest as WEIGHTS_PATH, which the API serves beside model.json, so that TensorFlow.js's own
// `tf.loadLayersModel(url)` fetches them as it fetches any model's weights.
import * as tf from '@tensorflow/tfjs';
import { layerShapes, layerSlices, ModelPreset } from './architecture';
import { initTensorFlow } from './backend';
import { FEATURE_SCALES } from './features';

/** The weights file, relative to the model.json's URL (`…/runs/:runId/model`). */
export const WEIGHTS_PATH = 'model/weights.bin';

export interface ExportedModel {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  /** The weights, float32 little-endian, base64: the model is one self-contained file. */
  weightData: string;
  userDefinedMetadata: {
    preset: ModelPreset;
    /** Inputs in this order, each as (value − centre) / scale. */
    features: { code: string; unit: string; centre: number; scale: number }[];
    label: string;
    output: 'probability';
  };
}

export async function exportModel(
  preset: ModelPreset,
  features: readonly string[],
  label: string,
  weights: Float32Array,
): Promise<ExportedModel> {
  await initTensorFlow();
  const shapes = layerShapes(preset, features.length);
  const slices = layerSlices(preset, features.length);
  const model = tf.sequential();
  shapes.forEach((s, i) =>
    model.add(
      tf.layers.dense({
        units: s.units,
        inputShape: i === 0 ? [s.inputs] : undefined,
        // Training works on logits; the exported model answers probabilities.
        activation: i === shapes.length - 1 ? 'sigmoid' : s.activation,
      }),
    ),
  );
  const tensors = slices.flatMap(({ kernel, bias }) => [
    tf.tensor2d(
      weights.subarray(kernel.offset, kernel.offset + kernel.shape[0] * kernel.shape[1]),
      kernel.shape,
    ),
    tf.tensor1d(weights.subarray(bias.offset, bias.offset + bias.shape[0])),
  ]);
  try {
    model.setWeights(tensors);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const data = artifacts!.weightData as ArrayBuffer;
    return {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
      convertedBy: null,
      modelTopology: artifacts!.modelTopology,
      weightsManifest: [{ paths: [WEIGHTS_PATH], weights: artifacts!.weightSpecs! }],
      weightData: Buffer.from(data).toString('base64'),
      userDefinedMetadata: {
        preset,
        features: features.map((code) => {
          const { unit, centre, scale } = FEATURE_SCALES[code];
          return { code, unit, centre, scale };
        }),
        label,
        output: 'probability',
      },
    };
  } finally {
    tensors.forEach((t) => t.dispose());
    model.dispose();
  }
}
