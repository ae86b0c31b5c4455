// Float64 sums kept in WebAssembly memory and folded by the SIMD kernels (kernels.ts).
import { CHUNK, instantiate, type Kernel } from './kernels';

/**
 * Float64 sums kept in WebAssembly memory, and the kernel that folds into them; the vectors
 * folded in are copied into it a chunk at a time. The memory never grows, so the `sums`
 * view stays valid. Layout: the sums from byte 0 (so that they can be narrowed, in place,
 * into a float32 vector that starts its buffer), then one chunk of x and one of g.
 *
 * Sums start at zero without being written: the first fold stores w·x (as 0 + w·x, the
 * bits a zeroed sum would hold) instead of reading and adding, so a fresh page faults once,
 * and a reused memory needs no zeroing pass.
 */
export class SimdSums {
  /** The last spent sums, for reuse. */
  private static spare: SimdSums | null = null;
  /** The memory of the last model given back (`release`), for the next `fresh` of its length. */
  private static released: SimdSums | null = null;
  /** The sums whose memory each model narrowed in place lives in, by the model's buffer. */
  private static readonly models = new WeakMap<ArrayBuffer, SimdSums>();
  private readonly kernel: Kernel;
  private readonly view: Float64Array;
  private readonly stagedX: Float32Array;
  private readonly stagedG: Float32Array;
  /** Whether the sums hold anything yet (before, they are zero whatever the memory holds). */
  private written = false;
  /** Whether the sums may be handed to the next `create` of their length once spent. */
  private readonly reusable: boolean;

  /**
   * Sums of `length` coordinates, in the memory of the last spent ones of that length when
   * there are some (their pages already mapped). Null where the engine has no WebAssembly SIMD.
   */
  static create(length: number): SimdSums | null {
    const reused = SimdSums.spare?.view.length === length ? SimdSums.spare : null;
    if (reused) {
      SimdSums.spare = null;
      reused.written = false;
      return reused;
    }
    return SimdSums.allocate(length, true);
  }

  /**
   * Sums in a memory of their own: the memory that `narrowInPlace` turns into a float32
   * vector, which then belongs to the caller, until it gives it back (`release`).
   */
  static fresh(length: number): SimdSums | null {
    const given = SimdSums.released?.view.length === length ? SimdSums.released : null;
    if (given) {
      SimdSums.released = null;
      given.written = false;
      return given;
    }
    return SimdSums.allocate(length, false);
  }

  /**
   * Gives back the memory of a model that `narrowInPlace` made, once its owner is done with it
   * (the coordinator, once the round's model is stored): the next `fresh` sums of that length
   * fold into pages already mapped instead of faulting in new ones, as numpy's allocator hands
   * a freed accumulator's pages to the next. The model, and every view of its buffer, must not
   * be read again. False (nothing done) for any other vector.
   */
  static release(model: Float32Array): boolean {
    const sums = SimdSums.models.get(model.buffer as ArrayBuffer);
    if (!sums) return false;
    SimdSums.models.delete(model.buffer as ArrayBuffer);
    SimdSums.released = sums;
    return true;
  }

  private static allocate(length: number, reusable: boolean): SimdSums | null {
    const chunk = Math.min(CHUNK, length);
    const instance = instantiate(8 * length + 8 * chunk);
    return instance
      ? new SimdSums(instance.kernel, instance.buffer, chunk, length, reusable)
      : null;
  }

  private constructor(
    kernel: Kernel,
    buffer: ArrayBuffer,
    chunk: number,
    length: number,
    reusable: boolean,
  ) {
    this.kernel = kernel;
    this.view = new Float64Array(buffer, 0, length);
    this.stagedX = new Float32Array(buffer, 8 * length, chunk);
    this.stagedG = new Float32Array(buffer, 8 * length + 4 * chunk, chunk);
    this.reusable = reusable;
  }

  /** The sums, as a float64 view of the memory (zeroed first if nothing was folded yet). */
  get sums(): Float64Array {
    this.materialise();
    return this.view;
  }

  /** sums += w·x */
  addScaled(x: Float32Array, w: number): void {
    const { stagedX, view } = this;
    const chunk = stagedX.length;
    const first = !this.written;
    this.written = true;
    for (let s = 0; s < view.length; s += chunk) {
      const count = Math.min(chunk, view.length - s);
      stagedX.set(x.subarray(s, s + count));
      if (first) this.kernel.foldFirst(8 * s, stagedX.byteOffset, count, w);
      else this.kernel.fold(8 * s, stagedX.byteOffset, count, w);
    }
  }

  /** sums += w·(x − g) */
  addScaledDifference(x: Float32Array, g: Float32Array, w: number): void {
    this.materialise();
    const { stagedX, stagedG, view } = this;
    const chunk = stagedX.length;
    for (let s = 0; s < view.length; s += chunk) {
      const count = Math.min(chunk, view.length - s);
      stagedX.set(x.subarray(s, s + count));
      stagedG.set(g.subarray(s, s + count));
      this.kernel.foldDifference(8 * s, stagedX.byteOffset, stagedG.byteOffset, count, w);
    }
  }

  /** sums /= d; 0 if every quotient is finite, NaN otherwise. */
  divide(d: number): number {
    this.materialise();
    return this.kernel.divide(0, this.view.length, d);
  }

  /**
   * The sums divided by d and rounded to float32, narrowed in place: a float32 view from
   * byte 0 of this memory, of `length` ≥ the sums' coordinates (those past them are left for
   * the caller to write; the memory has room for them). 0 if every quotient is finite, NaN
   * otherwise. The sums are spent; the memory now belongs to the returned view.
   */
  narrowInPlace(d: number, length: number): { out: Float32Array; poison: number } {
    if (this.reusable) throw new Error('reusable sums are narrowed with divideInto');
    this.materialise();
    const { view } = this;
    if (4 * length > view.buffer.byteLength) throw new RangeError('no room for the model');
    const poison = this.kernel.divideNarrow(0, 0, view.length, d);
    SimdSums.models.set(view.buffer as ArrayBuffer, this);
    return { out: new Float32Array(view.buffer, 0, length), poison };
  }

  /**
   * out = (sums / d) rounded to float32, narrowed in place, then copied; 0 if every quotient
   * is finite, NaN otherwise. These sums are then spent, and kept for the next SimdSums of
   * their length: a coordinator's next round writes to pages already mapped instead of
   * faulting in fresh ones (4 µs or more a page, measured here).
   */
  divideInto(out: Float32Array, d: number): number {
    this.materialise();
    const { view } = this;
    const poison = this.kernel.divideNarrow(0, 0, view.length, d);
    out.set(new Float32Array(view.buffer, 0, view.length));
    if (this.reusable) SimdSums.spare = this;
    return poison;
  }

  /** Zeroes sums that nothing was folded into yet, so that they can be read or added to. */
  private materialise(): void {
    if (this.written) return;
    this.view.fill(0);
    this.written = true;
  }
}
