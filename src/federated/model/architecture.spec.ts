import {
  initialWeights,
  layerShapes,
  layerSlices,
  MLP_HIDDEN_UNITS,
  parameterCount,
} from './architecture';

describe('the model presets', () => {
  it('count a logistic regression as one weight per feature plus a bias', () => {
    expect(parameterCount('LOGISTIC', 6)).toBe(7);
    expect(parameterCount('LOGISTIC', 1)).toBe(2);
  });

  it('count the MLP as a 16-unit hidden layer and one output unit, with biases', () => {
    expect(MLP_HIDDEN_UNITS).toBe(16);
    expect(parameterCount('MLP', 6)).toBe(6 * 16 + 16 + 16 * 1 + 1);
    expect(parameterCount('MLP', 6)).toBe(129);
    expect(layerShapes('MLP', 6).map((l) => l.activation)).toEqual(['relu', 'linear']);
  });

  it('lay each layer out as its kernel then its bias, input layer first, with no gaps', () => {
    expect(layerSlices('MLP', 5)).toEqual([
      { kernel: { offset: 0, shape: [5, 16] }, bias: { offset: 80, shape: [16] } },
      { kernel: { offset: 96, shape: [16, 1] }, bias: { offset: 112, shape: [1] } },
    ]);
    expect(parameterCount('MLP', 5)).toBe(113);
  });

  it('refuse a feature count a model cannot take, and unknown presets', () => {
    expect(() => parameterCount('LOGISTIC', 0)).toThrow(RangeError);
    expect(() => parameterCount('LOGISTIC', 1.5)).toThrow(RangeError);
    expect(() => parameterCount('CNN' as 'MLP', 3)).toThrow(RangeError);
  });
});

describe('initial weights', () => {
  it('are the same for the same seed and differ for another', () => {
    expect(initialWeights('MLP', 6, 42)).toEqual(initialWeights('MLP', 6, 42));
    expect(initialWeights('MLP', 6, 42)).not.toEqual(initialWeights('MLP', 6, 43));
  });

  it('start a logistic regression at zero, whatever the seed', () => {
    expect(initialWeights('LOGISTIC', 6, 42)).toEqual(new Float32Array(7));
  });

  it('give the MLP Glorot-uniform kernels and zero biases', () => {
    const weights = initialWeights('MLP', 6, 7);
    const [hidden, output] = layerSlices('MLP', 6);
    const kernel = (s: { offset: number; shape: number[] }) =>
      Array.from(weights.subarray(s.offset, s.offset + s.shape[0] * s.shape[1]));
    const limit = (inputs: number, units: number) => Math.sqrt(6 / (inputs + units));
    expect(kernel(hidden.kernel).every((w) => Math.abs(w) <= limit(6, 16))).toBe(true);
    expect(kernel(output.kernel).every((w) => Math.abs(w) <= limit(16, 1))).toBe(true);
    expect(new Set(kernel(hidden.kernel)).size).toBe(6 * 16);
    const bias = (s: { offset: number; shape: number[] }) =>
      Array.from(weights.subarray(s.offset, s.offset + s.shape[0]));
    expect(bias(hidden.bias)).toEqual(new Array(16).fill(0));
    expect(bias(output.bias)).toEqual([0]);
  });

  it('refuse a seed that is not a 32-bit whole number', () => {
    expect(() => initialWeights('LOGISTIC', 3, -1)).toThrow(RangeError);
    expect(() => initialWeights('LOGISTIC', 3, 2 ** 32)).toThrow(RangeError);
  });
});
