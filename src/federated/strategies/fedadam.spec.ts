import fc from 'fast-check';
import { FedAdam, FEDADAM_DEFAULTS } from './fedadam';

function step(strategy: FedAdam, global: Float32Array, round: number, ...models: Float32Array[]) {
  const aggregator = strategy.begin(global, round);
  for (const m of models) aggregator.fold(m, 10);
  return aggregator.finish().model;
}

describe('FedAdam', () => {
  it('uses Flower’s defaults: η 0.1, β₁ 0.9, β₂ 0.99, τ 1e-9', () => {
    const adam = new FedAdam();
    expect({ eta: adam.eta, beta1: adam.beta1, beta2: adam.beta2, tau: adam.tau }).toEqual(
      FEDADAM_DEFAULTS,
    );
    expect(FEDADAM_DEFAULTS).toEqual({ eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 });
  });

  it('takes the steps computed by hand over two rounds, momentum carrying the second', () => {
    const adam = new FedAdam();
    // Round 1: Δ = (1, 0.5); m = 0.1Δ; v = 0.01Δ²; x += 0.1·m/(√v + τ) ≈ 0.1 per coordinate.
    const first = step(adam, Float32Array.of(0, 1), 1, Float32Array.of(1, 1.5));
    expect(first[0]).toBeCloseTo(0.1, 7);
    expect(first[1]).toBeCloseTo(1.1, 6);
    // Round 2: the nodes send the model back unchanged, Δ = 0; m = 0.9·m, v = 0.99·v, and
    // the step is 0.1 · 0.9/√0.99 = 0.0904534 on each coordinate.
    const second = step(adam, first, 2, first.slice());
    expect(second[0] - first[0]).toBeCloseTo(0.1 * (0.9 / Math.sqrt(0.99)), 6);
    expect(second[1] - first[1]).toBeCloseTo(0.1 * (0.9 / Math.sqrt(0.99)), 6);
  });

  it('applies Adam to the example-weighted average of the round, FedAvg’s', () => {
    const adam = new FedAdam({ eta: 1, beta1: 0, beta2: 0, tau: 1 });
    // β = 0: m = Δ, v = Δ², so x += Δ/(|Δ| + 1); the average of 0 (×1) and 4 (×3) is 3.
    const aggregator = adam.begin(Float32Array.of(0), 1);
    aggregator.fold(Float32Array.of(0), 1);
    aggregator.fold(Float32Array.of(4), 3);
    expect(aggregator.finish().model[0]).toBeCloseTo(3 / 4, 7);
  });

  it('moves each coordinate by about η on its first step, whatever the size of Δ (≫ τ)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: Math.fround(1e-2), max: Math.fround(1e3), noNaN: true }), {
          minLength: 1,
          maxLength: 16,
        }),
        fc.boolean(),
        (magnitudes, negative) => {
          const global = new Float32Array(magnitudes.length);
          const update = Float32Array.from(magnitudes, (x) => (negative ? -x : x));
          const model = step(new FedAdam(), global, 1, update);
          model.forEach((x) => expect(Math.abs(Math.abs(x) - 0.1)).toBeLessThan(1e-6));
        },
      ),
    );
  });

  it('resumes from a persisted state exactly where an uninterrupted run would be', () => {
    const models = [
      Float32Array.of(1, -2, 3),
      Float32Array.of(0.5, 0.5, 0.5),
      Float32Array.of(-1, 0, 2),
    ];
    const uninterrupted = new FedAdam();
    let a: Float32Array = new Float32Array(3);
    models.forEach((m, k) => (a = step(uninterrupted, a, k + 1, m)));

    const first = new FedAdam();
    let b = step(first, new Float32Array(3), 1, models[0]);
    const saved = first.state();
    const resumed = new FedAdam();
    resumed.restore(saved);
    b = step(resumed, b, 2, models[1]);
    b = step(resumed, b, 3, models[2]);

    expect(b).toEqual(a);
    expect(resumed.state()).toEqual(uninterrupted.state());
    expect(saved.round).toBe(1);
    expect(saved.moments?.m).toHaveLength(3);
  });

  it('hands out copies of its moments, so a caller cannot change them behind its back', () => {
    const adam = new FedAdam();
    step(adam, new Float32Array(2), 1, Float32Array.of(1, 1));
    const state = adam.state();
    state.moments!.m.fill(1000);
    expect(adam.state().moments!.m[0]).toBeCloseTo(0.1, 6);
  });

  it('refuses moments that do not fit the model', () => {
    const adam = new FedAdam();
    step(adam, new Float32Array(2), 1, Float32Array.of(1, 1));
    const aggregator = adam.begin(new Float32Array(3), 2);
    aggregator.fold(new Float32Array(3), 1);
    expect(() => aggregator.finish()).toThrow(/moments have 2 parameters, the model 3/);
  });

  it('rejects hyperparameters outside their ranges', () => {
    expect(() => new FedAdam({ eta: 0 })).toThrow(/eta/);
    expect(() => new FedAdam({ beta1: 1 })).toThrow(/beta1/);
    expect(() => new FedAdam({ beta2: -0.1 })).toThrow(/beta2/);
    expect(() => new FedAdam({ tau: 0 })).toThrow(/tau/);
  });
});
