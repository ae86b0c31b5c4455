// Clipping bounds how far one node's update can move the aggregate, which is what lets
// Gaussian noise of a known scale hide any single node. The norm is taken over the whole
// parameter vector (all layers together), as in DP-FedAvg (McMahan et al. 2018).

import { simdDeltaNorm } from '../simd';

export type Vector = Float32Array | Float64Array;

/** Euclidean norm, summed in double precision. */
export function l2Norm(v: Vector): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  return Math.sqrt(sum);
}

/**
 * From this many parameters on, deltaNorm runs in WebAssembly SIMD (../simd): the same four
 * partial sums, so the same bits, in about half the time on 1M parameters.
 */
export const DELTA_NORM_SIMD_MIN = 1 << 14;

/** ‖update − global‖₂ without materialising the difference. */
export function deltaNorm(update: Float32Array, global: Float32Array): number {
  if (update.length !== global.length) {
    throw new RangeError(`update has ${update.length} parameters, the model ${global.length}`);
  }
  if (update.length >= DELTA_NORM_SIMD_MIN) {
    const norm = simdDeltaNorm(update, global);
    if (norm !== null) return norm;
  }
  return deltaNormLoop(update, global);
}

/** deltaNorm in JavaScript: where there is no WebAssembly SIMD, and as its reference. */
export function deltaNormLoop(update: Float32Array, global: Float32Array): number {
  // Four partial sums break the dependency chain of one running sum: about 3× faster on
  // 1M parameters, and this runs once per update when privacy is on.
  const n = update.length;
  const end = n - (n % 4);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i < end; i += 4) {
    const d0 = update[i] - global[i];
    const d1 = update[i + 1] - global[i + 1];
    const d2 = update[i + 2] - global[i + 2];
    const d3 = update[i + 3] - global[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < n; i++) {
    const d = update[i] - global[i];
    s0 += d * d;
  }
  return Math.sqrt(s0 + s1 + s2 + s3);
}

/** The factor that brings a vector of norm `norm` within `clipNorm`: min(1, C/‖Δ‖). */
export function clipScale(norm: number, clipNorm: number): number {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) {
    throw new RangeError(`clip norm must be a finite number > 0, got ${clipNorm}`);
  }
  if (Number.isNaN(norm)) throw new RangeError('cannot clip a vector holding NaN');
  return norm > clipNorm ? clipNorm / norm : 1;
}

/**
 * Scales `delta` in place so that its L2 norm is at most `clipNorm`, and returns the scale
 * applied (1 when it was already within). Rounding the scaled values to float32 can land a
 * hair above C, so a float32 vector is nudged down until it is within: the guarantee holds
 * exactly, not only up to rounding.
 */
export function clipDelta(delta: Vector, clipNorm: number): number {
  let scale = clipScale(l2Norm(delta), clipNorm);
  if (scale === 1) return 1;
  const original = delta.slice();
  for (let attempt = 0; ; attempt++) {
    for (let i = 0; i < delta.length; i++) delta[i] = original[i] * scale;
    if (l2Norm(delta) <= clipNorm) return scale;
    // Each retry shrinks by a few float32 ulps; one retry is enough in practice.
    scale *= 1 - 2 ** -22 * (attempt + 1);
  }
}
