// ‖x − g‖₂ by the SIMD kernel, for privacy's deltaNorm on large vectors: the same four
// partial sums in the same order, so the same bits, at about half the time on 1M parameters.
import { CHUNK, instantiate, type Kernel } from './kernels';

/** One instance for every call: a chunk of x, one of g, the four partial sums. */
let staging: {
  kernel: Kernel;
  x: Float32Array;
  g: Float32Array;
  sums: Float64Array;
} | null = null;

/**
 * ‖x − g‖₂ as deltaNorm computes it (x and g of the same length), or null where the engine
 * has no WebAssembly SIMD.
 */
export function simdDeltaNorm(x: Float32Array, g: Float32Array): number | null {
  if (!staging) {
    const instance = instantiate(8 * CHUNK + 32);
    if (!instance) return null;
    staging = {
      kernel: instance.kernel,
      x: new Float32Array(instance.buffer, 0, CHUNK),
      g: new Float32Array(instance.buffer, 4 * CHUNK, CHUNK),
      sums: new Float64Array(instance.buffer, 8 * CHUNK, 4),
    };
  }
  const { kernel, sums } = staging;
  sums.fill(0);
  // Every chunk but the last is a multiple of 4 long, so the lanes run on across chunks
  // and only the vector's last n mod 4 coordinates go to lane 0 alone, as in deltaNorm.
  for (let s = 0; s < x.length; s += CHUNK) {
    const count = Math.min(CHUNK, x.length - s);
    staging.x.set(x.subarray(s, s + count));
    staging.g.set(g.subarray(s, s + count));
    kernel.squaredDistance(sums.byteOffset, staging.x.byteOffset, staging.g.byteOffset, count);
  }
  return Math.sqrt(sums[0] + sums[1] + sums[2] + sums[3]);
}
