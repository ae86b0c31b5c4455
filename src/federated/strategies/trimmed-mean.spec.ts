import fc from 'fast-check';
import { TrimmedMean, trimmedMean } from './trimmed-mean';

const f32 = (min: number, max: number) =>
  fc.float({ min: Math.fround(min), max: Math.fround(max), noNaN: true });

describe('trimmed mean', () => {
  it('cuts ⌊β·N⌋ values from each end and averages the rest, unweighted', () => {
    const round = new TrimmedMean({ trimFraction: 0.2 }).begin(new Float32Array(2), 1);
    // Per coordinate: (1, 2, 3, 4, 100) → mean(2, 3, 4) = 3; (−50, 0, 0, 3, 3) → mean(0, 0, 3) = 1.
    const columns = [
      [1, -50],
      [2, 0],
      [100, 3],
      [3, 0],
      [4, 3],
    ];
    columns.forEach((c, k) => round.fold(Float32Array.from(c), k === 2 ? 1_000_000 : 1));
    const { model, metrics } = round.finish();
    expect(model).toEqual(Float32Array.of(3, 1));
    expect(metrics.updates).toBe(5);
    expect(metrics.totalExamples).toBe(1_000_004);
  });

  it('is the plain mean while ⌊β·N⌋ is 0, and the median-like middle at larger β', () => {
    const five = [1, 2, 3, 4, 10].map((x) => Float32Array.of(x));
    expect(trimmedMean(five, 0)[0]).toBe(4);
    expect(trimmedMean(five, 2)[0]).toBe(3);
    expect(trimmedMean([Float32Array.of(7)], 0)[0]).toBe(7);
  });

  it('ignores the k largest and k smallest values per coordinate, however extreme', () => {
    fc.assert(
      fc.property(
        fc.array(f32(-100, 100), { minLength: 1, maxLength: 6 }),
        fc.array(f32(1e3, 1e30), { minLength: 1, maxLength: 3 }),
        (honest, outliers) => {
          const k = outliers.length;
          // k huge values and k hugely negative ones, around the honest values.
          const poisoned = [...honest, ...outliers, ...outliers.map((x) => -x)].map((x) =>
            Float32Array.of(x),
          );
          const expected = honest.reduce((s, x) => s + x, 0) / honest.length;
          expect(trimmedMean(poisoned, k)[0]).toBeCloseTo(Math.fround(expected), 4);
        },
      ),
    );
  });

  it('keeps every coordinate within the range of the updates, in any arrival order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(f32(-1e3, 1e3), { minLength: 3, maxLength: 3 }), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.double({ min: 0, max: 0.49, noNaN: true }),
        (rows, beta) => {
          const aggregate = (list: number[][]) => {
            const round = new TrimmedMean({ trimFraction: beta }).begin(new Float32Array(3), 1);
            for (const r of list) round.fold(Float32Array.from(r), 1);
            return round.finish().model;
          };
          const model = aggregate(rows);
          expect(aggregate([...rows].reverse())).toEqual(model);
          for (let i = 0; i < 3; i++) {
            const column = rows.map((r) => Math.fround(r[i]));
            expect(model[i]).toBeGreaterThanOrEqual(Math.min(...column));
            expect(model[i]).toBeLessThanOrEqual(Math.max(...column));
          }
        },
      ),
    );
  });

  it('keeps its own copy of each update, so the caller may reuse its buffer', () => {
    const round = new TrimmedMean({ trimFraction: 0 }).begin(new Float32Array(1), 1);
    const buffer = Float32Array.of(1);
    round.fold(buffer, 1);
    buffer[0] = 3;
    round.fold(buffer, 1);
    expect(round.finish().model[0]).toBe(2);
  });

  it('holds at most maxUpdates updates in memory', () => {
    const round = new TrimmedMean({ maxUpdates: 2 }).begin(new Float32Array(1), 1);
    round.fold(Float32Array.of(1), 1);
    round.fold(Float32Array.of(2), 1);
    expect(() => round.fold(Float32Array.of(3), 1)).toThrow(/capped at 2/);
  });

  it('refuses differential privacy and a trim fraction of half or more', () => {
    expect(() => new TrimmedMean({ privacy: {} } as never)).toThrow(/differential privacy/);
    expect(() => new TrimmedMean({ trimFraction: 0.5 })).toThrow(/trimFraction/);
    expect(() => trimmedMean([Float32Array.of(1), Float32Array.of(2)], 1)).toThrow(/cannot cut/);
  });
});
