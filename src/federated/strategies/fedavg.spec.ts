import fc from 'fast-check';
import { FedAvg } from './fedavg';
import { FedProx } from './fedprox';
import { SIMD_MIN_SIZE } from './float64-sum';

const f32 = (min: number, max: number) =>
  fc.float({ min: Math.fround(min), max: Math.fround(max), noNaN: true });

/** N updates of the same size, each with its number of examples. */
const updates = fc.integer({ min: 1, max: 12 }).chain((size) =>
  fc.array(
    fc.record({
      model: fc.array(f32(-1e3, 1e3), { minLength: size, maxLength: size }),
      examples: fc.integer({ min: 1, max: 100000 }),
    }),
    { minLength: 1, maxLength: 8 },
  ),
);

function aggregate(
  strategy: FedAvg,
  global: Float32Array,
  list: { model: number[]; examples: number }[],
) {
  const round = strategy.begin(global, strategy.state().round + 1);
  for (const u of list) round.fold(Float32Array.from(u.model), u.examples);
  return round.finish();
}

describe('FedAvg', () => {
  it('averages the models weighted by their number of examples, as Flower does', () => {
    const round = new FedAvg().begin(new Float32Array(3), 1);
    round.fold(Float32Array.of(1, 2, 3), 1);
    round.fold(Float32Array.of(3, 6, 9), 3);
    const { model, metrics } = round.finish();
    // (1·(1, 2, 3) + 3·(3, 6, 9)) / 4
    expect(model).toEqual(Float32Array.of(2.5, 5, 7.5));
    expect(metrics).toEqual({
      strategy: 'FEDAVG',
      round: 1,
      updates: 2,
      totalExamples: 4,
      stepNorm: Math.sqrt(2.5 ** 2 + 5 ** 2 + 7.5 ** 2),
      privacy: null,
    });
  });

  it('ignores the global model it starts from: the result is the average of the updates', () => {
    const round = new FedAvg().begin(Float32Array.of(100, -100), 1);
    round.fold(Float32Array.of(1, 1), 5);
    expect(round.finish().model).toEqual(Float32Array.of(1, 1));
  });

  it('returns the common model when every node sends the same one', () => {
    fc.assert(
      fc.property(updates, ([first]) => {
        const round = new FedAvg().begin(new Float32Array(first.model.length), 1);
        for (const n of [first.examples, 7, 1, 123456])
          round.fold(Float32Array.from(first.model), n);
        // + 0: the sum of zeros is +0 even where the model held −0.
        expect(round.finish().model).toEqual(Float32Array.from(first.model, (x) => x + 0));
      }),
    );
  });

  it('keeps every coordinate within the range of the updates (a convex combination)', () => {
    fc.assert(
      fc.property(updates, (list) => {
        const size = list[0].model.length;
        const { model } = aggregate(new FedAvg(), new Float32Array(size), list);
        for (let i = 0; i < size; i++) {
          const values = list.map((u) => Math.fround(u.model[i]));
          expect(model[i]).toBeGreaterThanOrEqual(Math.min(...values));
          expect(model[i]).toBeLessThanOrEqual(Math.max(...values));
        }
      }),
    );
  });

  it('matches Σ nᵢuᵢ / Σ nᵢ computed directly, whatever the order the updates arrive in', () => {
    fc.assert(
      fc.property(updates, (list) => {
        const size = list[0].model.length;
        const total = list.reduce((s, u) => s + u.examples, 0);
        const expected = Array.from({ length: size }, (_, i) =>
          Math.fround(list.reduce((s, u) => s + u.examples * Math.fround(u.model[i]), 0) / total),
        );
        const forward = aggregate(new FedAvg(), new Float32Array(size), list).model;
        const backward = aggregate(new FedAvg(), new Float32Array(size), [...list].reverse()).model;
        for (const model of [forward, backward]) {
          model.forEach((x, i) =>
            expect(Math.abs(x - expected[i])).toBeLessThanOrEqual(
              Math.abs(expected[i]) * 2 ** -23 + 1e-30,
            ),
          );
        }
      }),
    );
  });

  it('lets the caller reuse its buffer for the next update', () => {
    const round = new FedAvg().begin(new Float32Array(2), 1);
    const buffer = Float32Array.of(1, 1);
    round.fold(buffer, 1);
    buffer.set([3, 3]);
    round.fold(buffer, 1);
    expect(round.finish().model).toEqual(Float32Array.of(2, 2));
  });

  it('refuses an update that holds NaN rather than publishing a NaN model', () => {
    const round = new FedAvg().begin(new Float32Array(2), 1);
    round.fold(Float32Array.of(1, NaN), 1);
    expect(() => round.finish()).toThrow(/not finite at parameter 1/);
  });

  it('returns the exact average rounded once on a model large enough for the SIMD kernel', () => {
    const size = 3 * SIMD_MIN_SIZE + 5;
    const list = [3, 1000, 17].map((examples, k) => ({
      model: Float32Array.from({ length: size }, (_, i) => Math.sin(i * (k + 1)) * 10 ** (k - 1)),
      examples,
    }));
    const round = new FedAvg().begin(new Float32Array(size), 1);
    for (const u of list) round.fold(u.model, u.examples);
    const { model } = round.finish();
    // Its buffer is the kernels' memory, larger than the model: the model starts it.
    expect(model.byteOffset).toBe(0);
    expect(model).toHaveLength(size);
    for (let i = 0; i < size; i++) {
      let sum = 0;
      for (const u of list) sum += u.examples * u.model[i];
      const exact = Math.fround(sum / 1020);
      if (model[i] !== exact) throw new Error(`coordinate ${i}: ${model[i]} ≠ ${exact}`);
    }
  });

  it('refuses an update that holds NaN on a large model too, naming the coordinate', () => {
    const size = SIMD_MIN_SIZE + 1;
    const round = new FedAvg().begin(new Float32Array(size), 1);
    const update = new Float32Array(size);
    update[size - 2] = NaN;
    round.fold(update, 1);
    expect(() => round.finish()).toThrow(`not finite at parameter ${size - 2}`);
  });

  it('refuses an update of another size, or without examples', () => {
    const round = new FedAvg().begin(new Float32Array(2), 1);
    expect(() => round.fold(new Float32Array(3), 1)).toThrow(/3 parameters, the model has 2/);
    expect(() => round.fold(new Float32Array(2), 0)).toThrow(/numExamples/);
    expect(() => round.fold(new Float32Array(2), 1.5)).toThrow(/numExamples/);
    expect(round.count).toBe(0);
  });
});

describe('FedProx', () => {
  it('sends μ to the nodes, 0.01 unless the study sets it', () => {
    expect(new FedProx().clientConfig()).toEqual({ mu: 0.01 });
    expect(new FedProx({ mu: 0.5 }).clientConfig()).toEqual({ mu: 0.5 });
    expect(new FedAvg().clientConfig()).toEqual({});
  });

  it('aggregates on the server exactly as FedAvg does', () => {
    fc.assert(
      fc.property(updates, (list) => {
        const global = new Float32Array(list[0].model.length);
        const prox = aggregate(new FedProx({ mu: 0.1 }), global, list);
        expect(prox.model).toEqual(aggregate(new FedAvg(), global, list).model);
        expect(prox.metrics.strategy).toBe('FEDPROX');
      }),
      { numRuns: 30 },
    );
  });

  it('rejects a negative μ', () => {
    expect(() => new FedProx({ mu: -1 })).toThrow(/mu/);
  });
});
