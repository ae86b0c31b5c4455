// Float64 sums kept in WebAssembly memory and folded by the SIMD kernels (kernels.ts).
import { CHUNK, instantiate, type Kernel } from './kernels';

/**
 * Float64 sums kept in WebAssembly memory, and the kernel that folds into them; the vectors
 * folded in are copied into it a chunk at a time. The memory never grows, so the `sums`
 * view stays valid. Layout: one chunk of x, one of g, then the sums.
 */
export class SimdSums {
  /** The last spent sums, for reuse. */
  private static spare: SimdSums | null = null;
  readonly sums: Float64Array;
  private readonly kernel: Kernel;
  private readonly stagedX: Float32Array;
  private readonly stagedG: Float32Array;

  /** Null where the engine has no WebAssembly SIMD. */
  static create(length: number): SimdSums | null {
    const reused = SimdSums.spare?.sums.length === length ? SimdSums.spare : null;
    if (reused) {
      SimdSums.spare = null;
      reused.sums.fill(0);
      return reused;
    }
    const chunk = Math.min(CHUNK, length);
    const instance = instantiate(8 * chunk + 8 * length);
    return instance ? new SimdSums(instance.kernel, instance.buffer, chunk, length) : null;
  }

  private constructor(kernel: Kernel, buffer: ArrayBuffer, chunk: number, length: number) {
    this.kernel = kernel;
    this.stagedX = new Float32Array(buffer, 0, chunk);
    this.stagedG = new Float32Array(buffer, 4 * chunk, chunk);
    this.sums = new Float64Array(buffer, 8 * chunk, length);
    // Written first, a fresh page faults once rather than twice (see Float64Sum).
    this.sums.fill(0);
  }

  /** sums += w·x */
  addScaled(x: Float32Array, w: number): void {
    const { stagedX, sums } = this;
    const chunk = stagedX.length;
    for (let s = 0; s < sums.length; s += chunk) {
      const count = Math.min(chunk, sums.length - s);
      stagedX.set(x.subarray(s, s + count));
      this.kernel.fold(sums.byteOffset + 8 * s, stagedX.byteOffset, count, w);
    }
  }

  /** sums += w·(x − g) */
  addScaledDifference(x: Float32Array, g: Float32Array, w: number): void {
    const { stagedX, stagedG, sums } = this;
    const chunk = stagedX.length;
    for (let s = 0; s < sums.length; s += chunk) {
      const count = Math.min(chunk, sums.length - s);
      stagedX.set(x.subarray(s, s + count));
      stagedG.set(g.subarray(s, s + count));
      const at = sums.byteOffset + 8 * s;
      this.kernel.foldDifference(at, stagedX.byteOffset, stagedG.byteOffset, count, w);
    }
  }

  /** sums /= d; 0 if every quotient is finite, NaN otherwise. */
  divide(d: number): number {
    return this.kernel.divide(this.sums.byteOffset, this.sums.length, d);
  }

  /**
   * out = (sums / d) rounded to float32, narrowed in place; 0 if every quotient is finite,
   * NaN otherwise. These sums are then spent, and kept for the next SimdSums of their length:
   * a coordinator's next round writes to pages already mapped instead of faulting in fresh
   * ones (4 µs or more a page, measured here).
   */
  divideInto(out: Float32Array, d: number): number {
    const { sums } = this;
    const poison = this.kernel.divideNarrow(sums.byteOffset, sums.byteOffset, sums.length, d);
    out.set(new Float32Array(sums.buffer, sums.byteOffset, sums.length));
    SimdSums.spare = this;
    return poison;
  }
}
