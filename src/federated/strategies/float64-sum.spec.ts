import fc from 'fast-check';
import { Float64Sum, releaseModel, SIMD_MIN_SIZE } from './float64-sum';
import { simdAvailable } from '../simd';

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

  it.each([true, false])('narrows 300 000 coordinates in place correctly (SIMD: %s)', (simd) => {
    const n = 300_001;
    const sum = new Float64Sum(n, { simd });
    expect(sum.vectorised).toBe(simd);
    const x = Float32Array.from({ length: n }, (_, i) => i * 0.25 - 1000);
    sum.addScaled(x, 3);
    sum.addScaledDifference(x, new Float32Array(n).fill(1), 2);
    const model = sum.toFloat32();
    for (let i = 0; i < n; i++) {
      const expected = Math.fround(5 * (i * 0.25 - 1000) - 2);
      if (model[i] !== expected) throw new Error(`coordinate ${i}: ${model[i]} ≠ ${expected}`);
    }
  });

  it('folds the next sums into the memory of a model given back, and into no other', () => {
    const n = SIMD_MIN_SIZE + 7;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 97) - 48.5);
    const modelOf = (w: number) => {
      const sum = new Float64Sum(n, { simd: true });
      sum.addScaled(x, w);
      sum.addScaled(x, 1);
      return sum.toFloat32(2);
    };
    const first = modelOf(3);
    const firstMemory = first.buffer;
    // Not given back: the next model has memory of its own, and the first is left whole.
    const second = modelOf(5);
    expect(second.buffer).not.toBe(firstMemory);
    expect(first[1]).toBe(Math.fround((3 * x[1] + x[1]) / 2));
    releaseModel(second);
    releaseModel(Float32Array.of(1, 2)); // not a model of these sums: nothing happens
    const third = modelOf(7);
    expect(third.buffer).toBe(second.buffer);
    for (let i = 0; i < n; i++) {
      const expected = Math.fround((7 * x[i] + x[i]) / 2);
      if (third[i] !== expected) throw new Error(`coordinate ${i}: ${third[i]} ≠ ${expected}`);
    }
    // Given back once, used once: a model of another length never takes it.
    releaseModel(third);
    const other = new Float64Sum(n + 2, { simd: true });
    other.addScaled(new Float32Array(n + 2).fill(1), 1);
    expect(other.toFloat32().buffer).not.toBe(third.buffer);
  });

  it('can be turned into a model only once', () => {
    const sum = new Float64Sum(3);
    sum.toFloat32();
    expect(() => sum.toFloat32()).toThrow(/already/);
  });

  it('can be folded into no more once it is a model', () => {
    const sum = new Float64Sum(3);
    sum.toFloat32();
    expect(() => sum.addScaled(Float32Array.of(1, 2, 3), 1)).toThrow(/already/);
    expect(() => sum.divideBy(2)).toThrow(/already/);
  });

  it('divides and rounds once each, and names the first coordinate that is not finite', () => {
    const sum = new Float64Sum(3);
    sum.addScaled(Float32Array.of(1, 2, 3), 1);
    expect(Array.from(sum.toFloat32(3))).toEqual([1 / 3, 2 / 3, 1].map(Math.fround));
    const bad = new Float64Sum(4);
    bad.addScaled(Float32Array.of(1, 2, Infinity, NaN), 1);
    expect(() => bad.toFloat32(2, 'the average')).toThrow(
      /the average is not finite at parameter 2/,
    );
  });
});

// The WebAssembly SIMD kernel against the JavaScript loops it stands in for: every float64
// sum, quotient and float32 model bit for bit (Object.is: -0 is not 0, NaN is NaN whatever
// its payload), on odd lengths, NaN and ±Infinity included.
describe('Float64Sum with the SIMD kernel', () => {
  const float32 = fc.float({ noDefaultInfinity: false, noNaN: false });
  const weight = fc.oneof(
    fc.integer({ min: 1, max: 100_000 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  type Step = { difference: boolean; x: number[]; g: number[]; w: number };
  const steps = (n: number) =>
    fc.array(
      fc.record({
        difference: fc.boolean(),
        x: fc.array(float32, { minLength: n, maxLength: n }),
        g: fc.array(float32, { minLength: n, maxLength: n }),
        w: weight,
      }),
      { minLength: 1, maxLength: 4 },
    );

  function run(n: number, list: Step[], simd: boolean) {
    const sum = new Float64Sum(n, { simd });
    for (const { difference, x, g, w } of list) {
      if (difference) sum.addScaledDifference(Float32Array.from(x), Float32Array.from(g), w);
      else sum.addScaled(Float32Array.from(x), w);
    }
    return sum;
  }

  const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    expect(a.length).toBe(b.length);
    for (let i = 0; i < a.length; i++) {
      if (!Object.is(a[i], b[i])) throw new Error(`coordinate ${i}: ${a[i]} ≠ ${b[i]}`);
    }
  };

  it('is available in the Node versions we run on', () => {
    expect(simdAvailable).toBe(true);
    expect(new Float64Sum(SIMD_MIN_SIZE).vectorised).toBe(true);
    expect(new Float64Sum(SIMD_MIN_SIZE - 1).vectorised).toBe(false);
    expect(new Float64Sum(5, { simd: false }).vectorised).toBe(false);
  });

  it('folds, divides and rounds bit for bit as the loops, NaN and ±Infinity included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 41 }).chain((n) => fc.tuple(fc.constant(n), steps(n))),
        fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.double({ min: 1e-300, noNaN: true })),
        ([n, list], divisor) => {
          const fast = run(n, list, true);
          const loops = run(n, list, false);
          expect(fast.vectorised).toBe(true);
          fast.parts.forEach((part, p) => sameBits(part, loops.parts[p]));
          const poison = fast.divideBy(divisor);
          expect(Object.is(poison, loops.divideBy(divisor))).toBe(true);
          fast.parts.forEach((part, p) => sameBits(part, loops.parts[p]));
          const model = (sum: Float64Sum) => {
            try {
              return sum.toFloat32(divisor);
            } catch (e) {
              return (e as Error).message;
            }
          };
          const a = model(fast);
          const b = model(loops);
          if (typeof a === 'string' || typeof b === 'string') expect(a).toEqual(b);
          else sameBits(a, b);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('folds across chunk boundaries and odd tails as the loops, on 3 large models', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: SIMD_MIN_SIZE, max: 70_001 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (n, seed) => {
          const x = new Float32Array(n);
          const g = new Float32Array(n);
          let h = seed;
          const next = () => (h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
          for (let i = 0; i < n; i++) {
            x[i] = (next() / 2 ** 32 - 0.5) * 2 ** ((next() % 60) - 30);
            g[i] = (next() / 2 ** 32 - 0.5) * 2 ** ((next() % 60) - 30);
          }
          const fast = new Float64Sum(n);
          const loops = new Float64Sum(n, { simd: false });
          for (const sum of [fast, loops]) {
            sum.addScaled(x, 37);
            sum.addScaledDifference(g, x, 0.3);
            sum.addScaled(g, 1001);
          }
          expect(fast.vectorised).toBe(true);
          fast.parts.forEach((part, p) => sameBits(part, loops.parts[p]));
          sameBits(fast.toFloat32(1039.7), loops.toFloat32(1039.7));
        },
      ),
      { numRuns: 3 },
    );
  });

  it('starts from zero when it takes over the memory of a spent sum of its size', () => {
    const n = SIMD_MIN_SIZE + 7;
    const first = new Float64Sum(n);
    first.addScaled(new Float32Array(n).fill(5), 3);
    first.toFloat32();
    const second = new Float64Sum(n);
    second.addScaled(new Float32Array(n).fill(1), 2);
    expect(new Set(second.toFloat32(4))).toEqual(new Set([0.5]));
  });
});
