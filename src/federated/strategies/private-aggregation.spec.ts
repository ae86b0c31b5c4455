import fc from 'fast-check';
import { l2Norm, RdpAccountant, type PrivacyConfig, type RandomBytes } from '../privacy';
import { FedAdam } from './fedadam';
import { FedAvg } from './fedavg';

// All-ones random bytes make Box–Muller's u₁ = 1, so r = 0: the exact aggregate, noise-free.
const noNoise: RandomBytes = (buffer) => buffer.fill(0xff);
const orders = [1.5, 2, 4, 8, 16, 32, 64];

function privacy(overrides: Partial<PrivacyConfig> = {}): PrivacyConfig {
  return { clipNorm: 1, noiseMultiplier: 1, denominator: 2, sampleRate: 1, orders, ...overrides };
}

function run(strategy: FedAvg | FedAdam, global: Float32Array, updates: [number[], number][]) {
  const round = strategy.begin(global, strategy.state().round + 1);
  for (const [model, n] of updates) round.fold(Float32Array.from(model), n);
  return round.finish();
}

describe('differentially private aggregation', () => {
  it('averages clipped deltas unweighted over the fixed denominator', () => {
    const strategy = new FedAvg({ privacy: privacy({ randomBytes: noNoise }) });
    // Δ₁ = (3, 4) is clipped to (0.6, 0.8); Δ₂ = (0.3, 0.4) is within C = 1. Its 1000
    // examples buy it no more weight than the 10 of the first: ((0.9, 1.2)) / 2.
    const { model } = run(strategy, Float32Array.of(0, 0), [
      [[3, 4], 10],
      [[0.3, 0.4], 1000],
    ]);
    expect(model[0]).toBeCloseTo(0.45, 7);
    expect(model[1]).toBeCloseTo(0.6, 7);
  });

  it('clips the difference from the global model, not the model itself', () => {
    const strategy = new FedAvg({ privacy: privacy({ denominator: 1, randomBytes: noNoise }) });
    const { model } = run(strategy, Float32Array.of(1, 1), [[[4, 5], 1]]);
    expect(model[0]).toBeCloseTo(1.6, 6);
    expect(model[1]).toBeCloseTo(1.8, 6);
  });

  it('shrinks toward the global model when fewer nodes report than the denominator expects', () => {
    const strategy = new FedAvg({ privacy: privacy({ denominator: 4, randomBytes: noNoise }) });
    const { model } = run(strategy, Float32Array.of(0, 0), [
      [[3, 4], 10],
      [[0.3, 0.4], 1000],
    ]);
    expect(model[0]).toBeCloseTo(0.225, 7);
    expect(model[1]).toBeCloseTo(0.3, 7);
  });

  it('weighs nodes by min(n/cap, 1) when a cap on examples is set', () => {
    const strategy = new FedAvg({
      privacy: privacy({ examplesCap: 100, randomBytes: noNoise }),
    });
    // 0.1·(0.6, 0.8) + 1·(0.3, 0.4) = (0.36, 0.48), over D = 2.
    const { model } = run(strategy, Float32Array.of(0, 0), [
      [[3, 4], 10],
      [[0.3, 0.4], 1000],
    ]);
    expect(model[0]).toBeCloseTo(0.18, 7);
    expect(model[1]).toBeCloseTo(0.24, 7);
  });

  it('moves the aggregate by at most C/D when one node is added, whatever the nodes sent', () => {
    const f32 = fc.float({ min: Math.fround(-1e3), max: Math.fround(1e3), noNaN: true });
    fc.assert(
      fc.property(
        fc.array(fc.array(f32, { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        fc.array(f32, { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 1, max: 1e6 }),
        fc.constantFrom(0.5, 1, 3),
        fc.constantFrom(1, 2.5, 10),
        (others, extra, examples, clipNorm, denominator) => {
          const config = privacy({ clipNorm, denominator, examplesCap: 50, randomBytes: noNoise });
          const global = Float32Array.of(1, -1, 0, 2);
          const updates = others.map((u): [number[], number] => [u, 7]);
          const without = run(new FedAvg({ privacy: config }), global, updates).model;
          const withIt = run(new FedAvg({ privacy: config }), global, [
            ...updates,
            [extra, examples],
          ]).model;
          const shift = l2Norm(Float64Array.from(withIt, (x, i) => x - without[i]));
          // Float32 rounding of the two models adds a few ulps of their magnitude.
          expect(shift).toBeLessThanOrEqual(clipNorm / denominator + 1e-5);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('adds Gaussian noise of standard deviation zC/D to every coordinate', () => {
    const strategy = new FedAvg({
      privacy: privacy({ clipNorm: 2, noiseMultiplier: 1.5, denominator: 3 }),
    });
    const size = 100_000;
    const global = new Float32Array(size);
    const { model, metrics } = run(strategy, global, [[Array.from(global), 5]]);
    let sumSq = 0;
    for (const x of model) sumSq += x * x;
    expect(metrics.privacy?.noiseStd).toBe(1); // 1.5 · 2 / 3
    expect(Math.abs(Math.sqrt(sumSq / size) - 1)).toBeLessThan(0.012); // ≈ 5 standard errors
  });

  it('reports after every round the ε spent so far, as the accountant computes it', () => {
    const config = privacy({ noiseMultiplier: 1.2, sampleRate: 0.3, delta: 1e-6 });
    const strategy = new FedAvg({ privacy: config });
    const reference = new RdpAccountant(orders);
    let previous = 0;
    let global: Float32Array = new Float32Array(4);
    for (let round = 1; round <= 3; round++) {
      const { model, metrics } = run(strategy, global, [[[1, 1, 1, 1], 3]]);
      reference.step(1.2, 0.3);
      expect(metrics.privacy).toEqual({
        clipNorm: 1,
        noiseMultiplier: 1.2,
        denominator: 2,
        sampleRate: 0.3,
        noiseStd: 0.6,
        delta: 1e-6,
        ...reference.epsilon(1e-6),
      });
      expect(metrics.privacy!.epsilon).toBeGreaterThan(previous);
      previous = metrics.privacy!.epsilon;
      global = model;
    }
  });

  it('reports ε at δ = 1e-5 unless the study sets δ', () => {
    const { metrics } = run(new FedAvg({ privacy: privacy() }), new Float32Array(1), [[[0], 1]]);
    expect(metrics.privacy?.delta).toBe(1e-5);
  });

  it('feeds FedAdam the private mean delta as its pseudo-gradient', () => {
    const strategy = new FedAdam({
      eta: 1,
      beta1: 0,
      beta2: 0,
      tau: 1,
      privacy: privacy({ denominator: 1, randomBytes: noNoise }),
    });
    // Δ = clip((3, 4)) = (0.6, 0.8); with β = 0 the step is Δ/(|Δ| + 1).
    const { model, metrics } = run(strategy, Float32Array.of(0, 0), [[[3, 4], 1]]);
    expect(model[0]).toBeCloseTo(0.6 / 1.6, 6);
    expect(model[1]).toBeCloseTo(0.8 / 1.8, 6);
    expect(metrics.privacy).not.toBeNull();
  });

  it('persists the privacy spent with the strategy state, and resumes from it', () => {
    const first = new FedAvg({ privacy: privacy() });
    run(first, new Float32Array(1), [[[0], 1]]);
    const resumed = new FedAvg({ privacy: privacy() });
    resumed.restore(JSON.parse(JSON.stringify(first.state())));
    const a = run(first, new Float32Array(1), [[[0], 1]]).metrics.privacy!.epsilon;
    const b = run(resumed, new Float32Array(1), [[[0], 1]]).metrics.privacy!.epsilon;
    expect(b).toBe(a);
  });

  it('refuses a state that lost its privacy accounting, or was accounted at other orders', () => {
    const plain = new FedAvg();
    run(plain, new Float32Array(1), [[[0], 1]]);
    expect(() => new FedAvg({ privacy: privacy() }).restore(plain.state())).toThrow(
      /no privacy accounting/,
    );
    const other = new FedAvg({ privacy: privacy({ orders: [2, 3] }) });
    run(other, new Float32Array(1), [[[0], 1]]);
    expect(() => new FedAvg({ privacy: privacy() }).restore(other.state())).toThrow(/orders/);
    expect(() => plain.restore(other.state())).toThrow(/privacy is off/);
  });

  it('rejects a configuration under which the guarantee would not hold', () => {
    expect(() => new FedAvg({ privacy: privacy({ clipNorm: 0 }) })).toThrow(/clipNorm/);
    expect(() => new FedAvg({ privacy: privacy({ noiseMultiplier: 0 }) })).toThrow(
      /noiseMultiplier/,
    );
    expect(() => new FedAvg({ privacy: privacy({ denominator: -1 }) })).toThrow(/denominator/);
    expect(() => new FedAvg({ privacy: privacy({ sampleRate: 0 }) })).toThrow(/sampleRate/);
    expect(() => new FedAvg({ privacy: privacy({ delta: 1 }) })).toThrow(/delta/);
    expect(() => new FedAvg({ privacy: privacy({ examplesCap: 0 }) })).toThrow(/examplesCap/);
  });
});
