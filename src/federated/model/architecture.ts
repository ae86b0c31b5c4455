// The shape of each model preset, its flat parameter layout and its seeded initial weights —
// in plain TypeScript, without TensorFlow.js, so that the coordinator can check an update's
// size and create a run's first global model without loading TF.js.
import { checkSeed, seededGenerator, uniform } from './prng';

export const MODEL_PRESETS = ['LOGISTIC', 'MLP'] as const;
export type ModelPreset = (typeof MODEL_PRESETS)[number];

/** Width of the MLP preset's one hidden layer. */
export const MLP_HIDDEN_UNITS = 16;

/** The most features a model accepts; studies list far fewer. */
export const MAX_FEATURES = 1024;

export interface DenseLayerShape {
  inputs: number;
  units: number;
  /** The output layer is linear here: the sigmoid is applied with the loss (from logits). */
  activation: 'relu' | 'linear';
}

/**
 * The dense layers of a preset, input to output. LOGISTIC is dense(1, sigmoid) on the
 * standardised features; MLP is dense(16, relu) → dense(1, sigmoid).
 */
export function layerShapes(preset: ModelPreset, numFeatures: number): DenseLayerShape[] {
  if (!Number.isInteger(numFeatures) || numFeatures < 1 || numFeatures > MAX_FEATURES) {
    throw new RangeError(`a model takes 1 to ${MAX_FEATURES} features, got ${numFeatures}`);
  }
  switch (preset) {
    case 'LOGISTIC':
      return [{ inputs: numFeatures, units: 1, activation: 'linear' }];
    case 'MLP':
      return [
        { inputs: numFeatures, units: MLP_HIDDEN_UNITS, activation: 'relu' },
        { inputs: MLP_HIDDEN_UNITS, units: 1, activation: 'linear' },
      ];
    default:
      throw new RangeError(`unknown model preset ${String(preset)}`);
  }
}

/**
 * Where each layer's parameters sit in the flat vector. The order is fixed and the same as
 * Keras' `getWeights()`: per layer, input to output, the kernel ([inputs, units], row-major)
 * then the bias ([units]).
 */
export interface LayerSlices {
  kernel: { offset: number; shape: [number, number] };
  bias: { offset: number; shape: [number] };
}

export function layerSlices(preset: ModelPreset, numFeatures: number): LayerSlices[] {
  let offset = 0;
  return layerShapes(preset, numFeatures).map(({ inputs, units }) => {
    const kernel = { offset, shape: [inputs, units] as [number, number] };
    offset += inputs * units;
    const bias = { offset, shape: [units] as [number] };
    offset += units;
    return { kernel, bias };
  });
}

export function parameterCount(preset: ModelPreset, numFeatures: number): number {
  return layerShapes(preset, numFeatures).reduce((n, l) => n + l.inputs * l.units + l.units, 0);
}

const INIT_STREAM = 0x696e6974; // "init"

/**
 * A run's first global model. LOGISTIC starts at zero, whatever the seed: its loss is convex,
 * so there is no symmetry to break, and zero (50% for everyone) carries no information; a random
 * start measurably slows a 5-round federation. MLP gets Glorot-uniform kernels (Keras' dense
 * default, U(±√(6 / (inputs + units)))) drawn from `seed`, and zero biases. Computed in float64
 * and rounded once, so it is bit-identical on every machine and backend.
 */
export function initialWeights(
  preset: ModelPreset,
  numFeatures: number,
  seed: number,
): Float32Array {
  checkSeed(seed);
  const shapes = layerShapes(preset, numFeatures);
  const slices = layerSlices(preset, numFeatures);
  const weights = new Float32Array(parameterCount(preset, numFeatures));
  const rng = seededGenerator(seed, INIT_STREAM);
  if (preset === 'LOGISTIC') return weights;
  shapes.forEach(({ inputs, units }, l) => {
    const limit = Math.sqrt(6 / (inputs + units));
    const { offset } = slices[l].kernel;
    for (let i = 0; i < inputs * units; i++) {
      weights[offset + i] = (2 * uniform(rng) - 1) * limit;
    }
  });
  return weights;
}
