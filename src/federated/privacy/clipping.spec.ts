import fc from 'fast-check';
import { simdDeltaNorm } from '../simd';
import {
  clipDelta,
  clipScale,
  DELTA_NORM_SIMD_MIN,
  deltaNorm,
  deltaNormLoop,
  l2Norm,
} from './clipping';

const f32 = (min: number, max: number) =>
  fc.float({ min: Math.fround(min), max: Math.fround(max), noNaN: true });
const vector = fc
  .array(f32(-1e4, 1e4), { minLength: 1, maxLength: 64 })
  .map((xs) => Float32Array.from(xs));

describe('clipping', () => {
  it('scales (3, 4) to norm 1 as (0.6, 0.8), reporting the scale 0.2', () => {
    const delta = Float64Array.of(3, 4);
    expect(clipDelta(delta, 1)).toBe(0.2);
    expect(Array.from(delta)).toEqual([0.6000000000000001, 0.8]);
  });

  it('leaves a delta within the norm, or exactly on it, untouched and reports a scale of 1', () => {
    const delta = Float32Array.of(0.375, -0.5); // norm 0.625
    expect(clipDelta(delta, 0.625)).toBe(1);
    expect(clipDelta(delta, 1)).toBe(1);
    expect(delta).toEqual(Float32Array.of(0.375, -0.5));
  });

  it('takes the norm over the whole vector, all layers together', () => {
    expect(l2Norm(Float32Array.of(1, 2, 2))).toBe(3);
    expect(deltaNorm(Float32Array.of(2, 3, 3), Float32Array.of(1, 1, 1))).toBe(3);
  });

  it('never increases the norm, never leaves it above C, and keeps the direction', () => {
    fc.assert(
      fc.property(vector, f32(1e-3, 1e3), (v, clipNorm) => {
        const before = l2Norm(v);
        const clipped = v.slice();
        const scale = clipDelta(clipped, clipNorm);
        expect(l2Norm(clipped)).toBeLessThanOrEqual(clipNorm);
        expect(l2Norm(clipped)).toBeLessThanOrEqual(before);
        expect(scale).toBeGreaterThan(0);
        expect(scale).toBeLessThanOrEqual(1);
        // A positive multiple of the original: every coordinate keeps its sign.
        v.forEach((x, i) => expect(Math.sign(clipped[i]) * Math.sign(x)).toBeGreaterThanOrEqual(0));
      }),
    );
  });

  it('rejects a clip norm that is not a positive number, and vectors holding NaN', () => {
    expect(() => clipScale(1, 0)).toThrow(/clip norm/);
    expect(() => clipScale(1, Infinity)).toThrow(/clip norm/);
    expect(() => clipScale(NaN, 1)).toThrow(/NaN/);
    expect(() => deltaNorm(new Float32Array(2), new Float32Array(3))).toThrow(/parameters/);
  });
});

// The WebAssembly SIMD deltaNorm against the loop: the same four partial sums in the same
// order, so the same bits (Object.is), on every length mod 4, NaN and ±Infinity included.
describe('deltaNorm in WebAssembly SIMD', () => {
  it('equals the loop bit for bit on short vectors of any float32s', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }).chain((n) => {
          const v = fc.array(fc.float(), { minLength: n, maxLength: n });
          return fc.tuple(v, v);
        }),
        ([x, g]) => {
          const a = Float32Array.from(x);
          const b = Float32Array.from(g);
          expect(Object.is(simdDeltaNorm(a, b), deltaNormLoop(a, b))).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is what deltaNorm uses on large vectors, across chunks, with the same bits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: DELTA_NORM_SIMD_MIN, max: 50_003 }),
        fc.integer({ min: 1, max: 2 ** 31 }),
        (n, seed) => {
          let h = seed;
          const next = () => (h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
          const x = Float32Array.from({ length: n }, () => next() / 2 ** 32 - 0.5);
          const g = Float32Array.from({ length: n }, () => (next() / 2 ** 32) * 1e-3);
          expect(Object.is(deltaNorm(x, g), deltaNormLoop(x, g))).toBe(true);
          expect(Object.is(simdDeltaNorm(x, g), deltaNormLoop(x, g))).toBe(true);
        },
      ),
      { numRuns: 8 },
    );
  });
});
