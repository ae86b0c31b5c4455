import fc from 'fast-check';
import { Float64Sum } from './float64-sum';

describe('Float64Sum', () => {
  it('sums in float64 and rounds once, into a compact float32 model in its own memory', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((n) =>
          fc.array(
            fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), {
              minLength: n,
              maxLength: n,
            }),
            {
              minLength: 1,
              maxLength: 5,
            },
          ),
        ),
        (vectors) => {
          const n = vectors[0].length;
          const sum = new Float64Sum(n);
          const exact = new Array<number>(n).fill(0);
          vectors.forEach((v, k) => {
            const x = Float32Array.from(v);
            sum.addScaled(x, k + 1);
            x.forEach((xi, i) => (exact[i] += (k + 1) * xi));
          });
          const model = sum.toFloat32();
          expect(model).toHaveLength(n);
          // The buffer is the model and nothing else: hashing model.buffer is safe.
          expect(model.buffer.byteLength).toBe(4 * n);
          expect(Array.from(model)).toEqual(exact.map((e) => Math.fround(e)));
        },
      ),
    );
  });

  it('narrows 300 000 coordinates in place correctly, in optimised code too', () => {
    const n = 300_001;
    const sum = new Float64Sum(n);
    const x = Float32Array.from({ length: n }, (_, i) => i * 0.25 - 1000);
    sum.addScaled(x, 3);
    sum.addScaledDifference(x, new Float32Array(n).fill(1), 2);
    const model = sum.toFloat32();
    for (let i = 0; i < n; i++) {
      const expected = Math.fround(5 * (i * 0.25 - 1000) - 2);
      if (model[i] !== expected) throw new Error(`coordinate ${i}: ${model[i]} ≠ ${expected}`);
    }
  });

  it('can be turned into a model only once', () => {
    const sum = new Float64Sum(3);
    sum.toFloat32();
    expect(() => sum.toFloat32()).toThrow(/already/);
  });
});
