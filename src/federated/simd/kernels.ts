// WebAssembly SIMD kernels for the federated maths' hot loops, two float64 coordinates per
// f64x2 instruction: V8 does not vectorise JavaScript, and the scalar loops folded updates
// at a third to two thirds of numpy's speed. The module is assembled below from its opcodes
// (about 1 kB): no toolchain, no binary file to trust. Its arithmetic is the scalar loops'
// — float32 promoted exactly, one IEEE-754 multiply, subtract, add or divide per step, in
// the same order, no fused multiply-add — so every result is bit for bit what the
// JavaScript gives (float64-sum.spec.ts and clipping.spec.ts hold both to that).

/** The sliver of the WebAssembly API used here (the DOM lib that declares it is not loaded). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: Kernel };
}

export interface Kernel {
  /** sum[j] += w·x[j], j < count; addresses in bytes. */
  fold(sum: number, x: number, count: number, w: number): void;
  /**
   * sum[j] = 0 + w·x[j]: fold into sums that are all zero, without reading them (the bits of
   * a zeroed sum folded once: +0, never −0), so fresh pages fault once, on the write.
   */
  foldFirst(sum: number, x: number, count: number, w: number): void;
  /** sum[j] += w·(x[j] − g[j]) */
  foldDifference(sum: number, x: number, g: number, count: number, w: number): void;
  /** sum[j] /= d; returns 0 if every quotient is finite, NaN if one is not. */
  divide(sum: number, count: number, d: number): number;
  /** out[j] = fround(sum[j] / d), as divide; out may start where sum does (read first). */
  divideNarrow(sum: number, out: number, count: number, d: number): number;
  /**
   * acc[j mod 4] += (x[j] − g[j])² for j < count − count mod 4, then acc[0] for the rest:
   * the four partial sums of privacy's deltaNorm, continued from acc.
   */
  squaredDistance(acc: number, x: number, g: number, count: number): void;
}

export const PAGE = 65536;
/** Coordinates of a vector copied in per call: 32 kB of float32, which stay in L1/L2. */
export const CHUNK = 8192;

// ---- the module, assembled ----------------------------------------------------------------

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const vector = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

// Instructions; memory operands are (log2 alignment, offset).
const get = (l: number) => [0x20, ...uleb(l)];
const set = (l: number) => [0x21, ...uleb(l)];
const tee = (l: number) => [0x22, ...uleb(l)];
const i32Const = (v: number) => [0x41, ...sleb(v)];
/** f64.const +0 */
const f64Const0 = [0x44, 0, 0, 0, 0, 0, 0, 0, 0];
const [i32Add, i32And, i32Shl, i32GeU] = [[0x6a], [0x71], [0x74], [0x4f]];
const f32Load = [0x2a, 2, 0];
const f64Load = [0x2b, 3, 0];
const f32Store = [0x38, 2, 0];
const f64Store = [0x39, 3, 0];
const [f64Add, f64Sub, f64Mul, f64Div] = [[0xa0], [0xa1], [0xa2], [0xa3]];
const [f64PromoteF32, f32DemoteF64] = [[0xbb], [0xb6]];
const simd = (op: number, ...immediates: number[]) => [0xfd, ...uleb(op), ...immediates];
const v128Load = (offset: number) => simd(0x00, 4, ...uleb(offset));
const v128Store = (offset: number) => simd(0x0b, 4, ...uleb(offset));
/** Two float32s into the low half. */
const v128Load64Zero = (offset: number) => simd(0x5d, 3, ...uleb(offset));
/** The low half (two float32s) to memory. */
const v128Store64Lane0 = (offset: number) => simd(0x5b, 3, ...uleb(offset), 0);
const f64x2Splat = simd(0x14);
const f64x2ExtractLane = (lane: number) => simd(0x21, lane);
const f64x2ReplaceLane = (lane: number) => simd(0x22, lane);
const [f64x2Add, f64x2Sub, f64x2Mul, f64x2Div] = [simd(0xf0), simd(0xf1), simd(0xf2), simd(0xf3)];
const f64x2PromoteLowF32x4 = simd(0x5f);
const f32x4DemoteF64x2Zero = simd(0x5e);

/** while (pointer < end) { body } */
const whileBelow = (pointer: number, end: number, body: number[]) => [
  ...[0x02, 0x40, 0x03, 0x40], // block, loop
  ...get(pointer),
  ...get(end),
  ...i32GeU,
  ...[0x0d, 1], // br_if out of the block
  ...body,
  ...[0x0c, 0, 0x0b, 0x0b], // br to the loop; end loop; end block
];
const advance = (pointer: number, bytes: number) => [
  ...get(pointer),
  ...i32Const(bytes),
  ...i32Add,
  ...set(pointer),
];
/** end = start + (count & mask) << shift */
const endOf = (end: number, start: number, count: number, mask: number, shift: number) => [
  ...get(start),
  ...get(count),
  ...i32Const(mask),
  ...i32And,
  ...i32Const(shift),
  ...i32Shl,
  ...i32Add,
  ...set(end),
];

/** Coordinates per vector iteration: four f64x2 steps. */
const STEP = 8;

interface Func {
  params: number[];
  results: number[];
  locals: number[];
  body: number[];
}

/** A vector loop over count − count mod step coordinates, then a scalar one over the rest. */
function loops(
  lead: number,
  count: number,
  end: number,
  leadShift: number,
  pair: (k: number) => number[],
  pairsAdvance: number[],
  scalar: number[],
  step = STEP,
) {
  const body: number[] = [];
  for (let k = 0; k < step / 2; k++) body.push(...pair(k));
  return [
    ...endOf(end, lead, count, -step, leadShift),
    ...whileBelow(lead, end, [...body, ...pairsAdvance]),
    ...endOf(end, lead, count, step - 1, leadShift),
    ...whileBelow(lead, end, scalar),
  ];
}

function fold(): Func {
  const [sum, x, count, w, end, wv] = [0, 1, 2, 3, 4, 5];
  return {
    params: [I32, I32, I32, F64],
    results: [],
    locals: [I32, V128],
    body: [
      ...get(w),
      ...f64x2Splat,
      ...set(wv),
      ...loops(
        x,
        count,
        end,
        2,
        (k) => [
          ...get(sum),
          ...get(sum),
          ...v128Load(16 * k),
          ...get(x),
          ...v128Load64Zero(8 * k),
          ...f64x2PromoteLowF32x4,
          ...get(wv),
          ...f64x2Mul,
          ...f64x2Add,
          ...v128Store(16 * k),
        ],
        [...advance(sum, 8 * STEP), ...advance(x, 4 * STEP)],
        [
          ...get(sum),
          ...get(sum),
          ...f64Load,
          ...get(x),
          ...f32Load,
          ...f64PromoteF32,
          ...get(w),
          ...f64Mul,
          ...f64Add,
          ...f64Store,
          ...advance(sum, 8),
          ...advance(x, 4),
        ],
      ),
    ],
  };
}

function foldFirst(): Func {
  const [sum, x, count, w, end, wv, zero] = [0, 1, 2, 3, 4, 5, 6];
  return {
    params: [I32, I32, I32, F64],
    results: [],
    locals: [I32, V128, V128],
    body: [
      ...get(w),
      ...f64x2Splat,
      ...set(wv),
      // A fresh local is all zero bits: +0 in both lanes.
      ...loops(
        x,
        count,
        end,
        2,
        (k) => [
          ...get(sum),
          ...get(zero),
          ...get(x),
          ...v128Load64Zero(8 * k),
          ...f64x2PromoteLowF32x4,
          ...get(wv),
          ...f64x2Mul,
          ...f64x2Add,
          ...v128Store(16 * k),
        ],
        [...advance(sum, 8 * STEP), ...advance(x, 4 * STEP)],
        [
          ...get(sum),
          ...f64Const0,
          ...get(x),
          ...f32Load,
          ...f64PromoteF32,
          ...get(w),
          ...f64Mul,
          ...f64Add,
          ...f64Store,
          ...advance(sum, 8),
          ...advance(x, 4),
        ],
      ),
    ],
  };
}

function foldDifference(): Func {
  const [sum, x, g, count, w, end, wv] = [0, 1, 2, 3, 4, 5, 6];
  return {
    params: [I32, I32, I32, I32, F64],
    results: [],
    locals: [I32, V128],
    body: [
      ...get(w),
      ...f64x2Splat,
      ...set(wv),
      ...loops(
        x,
        count,
        end,
        2,
        (k) => [
          ...get(sum),
          ...get(sum),
          ...v128Load(16 * k),
          ...get(x),
          ...v128Load64Zero(8 * k),
          ...f64x2PromoteLowF32x4,
          ...get(g),
          ...v128Load64Zero(8 * k),
          ...f64x2PromoteLowF32x4,
          ...f64x2Sub,
          ...get(wv),
          ...f64x2Mul,
          ...f64x2Add,
          ...v128Store(16 * k),
        ],
        [...advance(sum, 8 * STEP), ...advance(x, 4 * STEP), ...advance(g, 4 * STEP)],
        [
          ...get(sum),
          ...get(sum),
          ...f64Load,
          ...get(x),
          ...f32Load,
          ...f64PromoteF32,
          ...get(g),
          ...f32Load,
          ...f64PromoteF32,
          ...f64Sub,
          ...get(w),
          ...f64Mul,
          ...f64Add,
          ...f64Store,
          ...advance(sum, 8),
          ...advance(x, 4),
          ...advance(g, 4),
        ],
      ),
    ],
  };
}

/** poison + both lanes of poisons, left on the stack */
const sumPoisons = (poison: number, poisons: number) => [
  ...get(poison),
  ...get(poisons),
  ...f64x2ExtractLane(0),
  ...f64Add,
  ...get(poisons),
  ...f64x2ExtractLane(1),
  ...f64Add,
];

/** v − v is 0 for a finite v and NaN otherwise: summed, a finiteness check for free. */
function divide(): Func {
  const [sum, count, d, end, dv, poisons, quotients, poison, quotient] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8,
  ];
  return {
    params: [I32, I32, F64],
    results: [F64],
    locals: [I32, V128, V128, V128, F64, F64],
    body: [
      ...get(d),
      ...f64x2Splat,
      ...set(dv),
      ...loops(
        sum,
        count,
        end,
        3,
        (k) => [
          ...get(sum),
          ...get(sum),
          ...v128Load(16 * k),
          ...get(dv),
          ...f64x2Div,
          ...tee(quotients),
          ...v128Store(16 * k),
          ...get(poisons),
          ...get(quotients),
          ...get(quotients),
          ...f64x2Sub,
          ...f64x2Add,
          ...set(poisons),
        ],
        advance(sum, 8 * STEP),
        [
          ...get(sum),
          ...get(sum),
          ...f64Load,
          ...get(d),
          ...f64Div,
          ...tee(quotient),
          ...f64Store,
          ...get(poison),
          ...get(quotient),
          ...get(quotient),
          ...f64Sub,
          ...f64Add,
          ...set(poison),
          ...advance(sum, 8),
        ],
      ),
      ...sumPoisons(poison, poisons),
    ],
  };
}

/** divide, writing the quotients rounded to float32 to out instead of the sums. */
function divideNarrow(): Func {
  const [sum, out, count, d, end, dv, poisons, quotients, poison, quotient] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
  ];
  return {
    params: [I32, I32, I32, F64],
    results: [F64],
    locals: [I32, V128, V128, V128, F64, F64],
    body: [
      ...get(d),
      ...f64x2Splat,
      ...set(dv),
      ...loops(
        sum,
        count,
        end,
        3,
        (k) => [
          ...get(out),
          ...get(sum),
          ...v128Load(16 * k),
          ...get(dv),
          ...f64x2Div,
          ...tee(quotients),
          ...f32x4DemoteF64x2Zero,
          ...v128Store64Lane0(8 * k),
          ...get(poisons),
          ...get(quotients),
          ...get(quotients),
          ...f64x2Sub,
          ...f64x2Add,
          ...set(poisons),
        ],
        [...advance(sum, 8 * STEP), ...advance(out, 4 * STEP)],
        [
          ...get(out),
          ...get(sum),
          ...f64Load,
          ...get(d),
          ...f64Div,
          ...tee(quotient),
          ...f32DemoteF64,
          ...f32Store,
          ...get(poison),
          ...get(quotient),
          ...get(quotient),
          ...f64Sub,
          ...f64Add,
          ...set(poison),
          ...advance(sum, 8),
          ...advance(out, 4),
        ],
      ),
      ...sumPoisons(poison, poisons),
    ],
  };
}

/**
 * Four coordinates a step, as deltaNorm: lanes 0 and 1 in `low`, 2 and 3 in `high`; the
 * scalar rest into lane 0 after them, as deltaNorm adds it to s0.
 */
function squaredDistance(): Func {
  const [acc, x, g, count, end, low, high, dv, d] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const lanes = [low, high];
  const difference =
    (load: (k: number) => number[], promote: number[], sub: number[]) => (k: number) => [
      ...get(x),
      ...load(k),
      ...promote,
      ...get(g),
      ...load(k),
      ...promote,
      ...sub,
    ];
  const pairDifference = difference((k) => v128Load64Zero(8 * k), f64x2PromoteLowF32x4, f64x2Sub);
  const scalarDifference = difference(() => f32Load, f64PromoteF32, f64Sub);
  return {
    params: [I32, I32, I32, I32],
    results: [],
    locals: [I32, V128, V128, V128, F64],
    body: [
      ...get(acc),
      ...v128Load(0),
      ...set(low),
      ...get(acc),
      ...v128Load(16),
      ...set(high),
      ...loops(
        x,
        count,
        end,
        2,
        (k) => [
          ...get(lanes[k]),
          ...pairDifference(k),
          ...tee(dv),
          ...get(dv),
          ...f64x2Mul,
          ...f64x2Add,
          ...set(lanes[k]),
        ],
        [...advance(x, 16), ...advance(g, 16)],
        [
          ...get(low),
          ...get(low),
          ...f64x2ExtractLane(0),
          ...scalarDifference(0),
          ...tee(d),
          ...get(d),
          ...f64Mul,
          ...f64Add,
          ...f64x2ReplaceLane(0),
          ...set(low),
          ...advance(x, 4),
          ...advance(g, 4),
        ],
        4,
      ),
      ...get(acc),
      ...get(low),
      ...v128Store(0),
      ...get(acc),
      ...get(high),
      ...v128Store(16),
    ],
  };
}

function kernelModule(): Uint8Array {
  const funcs: Record<keyof Kernel, Func> = {
    fold: fold(),
    foldFirst: foldFirst(),
    foldDifference: foldDifference(),
    divide: divide(),
    divideNarrow: divideNarrow(),
    squaredDistance: squaredDistance(),
  };
  const list = Object.entries(funcs);
  const types = list.map(([, f]) => [
    0x60,
    ...vector(f.params.map((t) => [t])),
    ...vector(f.results.map((t) => [t])),
  ]);
  const code = list.map(([, f]) => {
    const body = [...vector(f.locals.map((t) => [1, t])), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    // import env.memory, at least one page
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vector(list.map((_, i) => uleb(i)))),
    ...section(7, vector(list.map(([n], i) => [...name(n), 0x00, ...uleb(i)]))),
    ...section(10, vector(code)),
  ]);
}

const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
const bytes = kernelModule();
/** Compiled once; null where the engine has no WebAssembly SIMD (the JavaScript loops run). */
const compiled = wasm?.validate(bytes) ? new wasm.Module(bytes) : null;

export const simdAvailable = compiled !== null;

/**
 * The kernels over a memory of their own, of `bytes` rounded up to whole pages; it never
 * grows, so views of it stay valid. Null where the engine has no WebAssembly SIMD.
 */
export function instantiate(bytes: number): { kernel: Kernel; buffer: ArrayBuffer } | null {
  if (!wasm || !compiled) return null;
  const pages = Math.max(1, Math.ceil(bytes / PAGE));
  const memory = new wasm.Memory({ initial: pages, maximum: pages });
  return {
    kernel: new wasm.Instance(compiled, { env: { memory } }).exports,
    buffer: memory.buffer,
  };
}
