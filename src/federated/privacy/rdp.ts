// Rényi differential privacy (RDP) of the sampled Gaussian mechanism, and its conversion to
// (ε, δ). This is the analysis of Mironov, Talwar and Zhang, "Rényi Differential Privacy of
// the Sampled Gaussian Mechanism" (2019), computed the way TensorFlow Privacy's
// `rdp_accountant.compute_rdp` and Opacus's `analysis/rdp.py` compute it — the same series,
// so their published numbers are our test oracle — with one fix to their stopping rule for
// fractional orders (see logAFractional). Everything is in log space: the terms of the
// series overflow a double long before the orders we use.
//
// The mechanism: each round includes each node independently with probability q (Poisson
// sampling), sums the included updates, each clipped to L2 norm C, and adds N(0, (zC)²)
// per coordinate. The neighbouring relation is add/remove one node's update.

/**
 * Opacus's default orders (1.1 to 10.9 in steps of 0.1, then 12 to 63) extended by 128 and
 * 256, which only matter for very small sample rates and large noise.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
  128,
  256,
]);

/** How RDP is turned into (ε, δ); both are valid upper bounds. */
export type RdpConversion = 'improved' | 'classic';

export interface PrivacySpent {
  epsilon: number;
  /** The RDP order that gave the smallest ε. */
  order: number;
}

/** RDP of `steps` compositions of the sampled Gaussian mechanism, at each of `orders`. */
export function computeRdp(
  sampleRate: number,
  noiseMultiplier: number,
  steps: number,
  orders: readonly number[],
): number[] {
  if (!(sampleRate >= 0 && sampleRate <= 1)) {
    throw new RangeError(`sample rate must lie in [0, 1], got ${sampleRate}`);
  }
  if (!(noiseMultiplier >= 0) || !Number.isFinite(noiseMultiplier)) {
    throw new RangeError(`noise multiplier must be a finite number ≥ 0, got ${noiseMultiplier}`);
  }
  if (!Number.isSafeInteger(steps) || steps < 0) {
    throw new RangeError(`steps must be a whole number ≥ 0, got ${steps}`);
  }
  return orders.map((order) => {
    if (!(order > 1)) throw new RangeError(`RDP orders must exceed 1, got ${order}`);
    if (steps === 0) return 0;
    return rdpOfOneStep(sampleRate, noiseMultiplier, order) * steps;
  });
}

function rdpOfOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  // Without noise nothing is hidden: the divergence is unbounded at every order.
  if (sigma === 0) return Infinity;
  // Without sampling this is the plain Gaussian mechanism, whose RDP is α/(2σ²).
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  return logA(q, sigma, alpha) / (alpha - 1);
}

/** log A_α, where RDP_α = log(A_α)/(α−1) (Mironov et al. 2019, section 3.3). */
export function logA(q: number, sigma: number, alpha: number): number {
  return Number.isInteger(alpha) ? logAInteger(q, sigma, alpha) : logAFractional(q, sigma, alpha);
}

/** For integer α, A_α is a finite binomial sum: Σ C(α,i) q^i (1−q)^(α−i) exp((i²−i)/(2σ²)). */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logBinom = 0; // log C(α, 0), then updated by the ratio C(α,i)/C(α,i−1) = (α−i+1)/i
  let result = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const term = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    result = logAdd(result, term);
  }
  return result;
}

// The series for fractional α has infinitely many terms, of alternating sign past i = α.
// Like TF Privacy we stop once both new terms are below e^-30 (A_α ≥ 1, so that is a
// relative error below 1e-13). That takes a few thousand terms at worst in practice (q = ½,
// σ = 1: about 0.1 s per step over the default orders); the cap only stops absurd input.
const FRACTIONAL_TERM_FLOOR = -30;
const FRACTIONAL_MAX_TERMS = 1_000_000;

/** For fractional α, the two-sided series of Mironov et al. 2019, section 3.3. */
function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const s2 = sigma * sigma;
  const z0 = s2 * Math.log(1 / q - 1) + 0.5;
  const scale = Math.SQRT2 * sigma;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  // |C(α, i)| in log space and its sign, updated by the ratio (α−i+1)/i.
  let logAbsBinom = 0;
  let binomPositive = true;
  for (let i = 0; i < FRACTIONAL_MAX_TERMS; i++) {
    if (i > 0) {
      const ratio = (alpha - i + 1) / i;
      logAbsBinom += Math.log(Math.abs(ratio));
      if (ratio < 0) binomPositive = !binomPositive;
    }
    const j = alpha - i;
    const logT0 = logAbsBinom + i * logQ + j * log1mQ;
    const logT1 = logAbsBinom + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / scale);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / scale);
    const logS0 = logT0 + (i * i - i) / (2 * s2) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * s2) + logE1;
    if (binomPositive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    // Only past i = α: before it the terms can start tiny and grow (the binomial weights
    // peak near i ≈ qα), and TF Privacy's rule, which stops at the first tiny pair, then
    // returns garbage — e.g. a negative RDP for q = 0.057, σ = 9.5, α = 511.5.
    if (i > alpha && Math.max(logS0, logS1) < FRACTIONAL_TERM_FLOOR) return logAdd(logA0, logA1);
  }
  throw new RangeError(
    `the RDP series for order ${alpha} did not converge (q = ${q}, σ = ${sigma})`,
  );
}

/** log(e^x + e^y) without overflow. */
function logAdd(x: number, y: number): number {
  const hi = Math.max(x, y);
  const lo = Math.min(x, y);
  if (lo === -Infinity) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(e^x − e^y) for x ≥ y. */
function logSub(x: number, y: number): number {
  if (x < y) throw new RangeError('log-space subtraction would go negative');
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = x - y;
  // expm1 is exact for small gaps; log1p(−e^−d) for large ones, where expm1 would overflow.
  return d < 1 ? Math.log(Math.expm1(d)) + y : x + Math.log1p(-Math.exp(-d));
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/**
 * log(erfc(x)), accurate to about 1e-15 relative and finite far beyond where erfc(x)
 * underflows (x > 26). erfc(x) = Q(½, x²), the regularised upper incomplete gamma
 * function, evaluated by its power series below x ≈ 1.25 and by its continued fraction
 * (modified Lentz) above, where the continued fraction converges quickly and yields the
 * logarithm directly as −x² + log x − log √π + log(fraction).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 1.25) return Math.log1p(-erfSeries(x));
  if (x === Infinity) return -Infinity;
  return -x * x + Math.log(x) - LOG_SQRT_PI + Math.log(upperGammaHalfFraction(x * x));
}

/** erf(x) = P(½, x²) by the series of the lower incomplete gamma function, for 0 ≤ x < 1.25. */
function erfSeries(x: number): number {
  if (x === 0) return 0;
  const x2 = x * x;
  let a = 0.5;
  let term = 1 / a;
  let sum = term;
  for (let n = 0; n < 200; n++) {
    a += 1;
    term *= x2 / a;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * Number.EPSILON) break;
  }
  // P(½, x²) = sum · e^(−x²) · (x²)^½ / Γ(½)
  return sum * Math.exp(-x2 - LOG_SQRT_PI) * x;
}

/** The continued fraction of Γ(½, t) / (e^−t t^½), for t ≥ 1.5. */
function upperGammaHalfFraction(t: number): number {
  const tiny = 1e-300;
  const a = 0.5;
  let b = t + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < Number.EPSILON) break;
  }
  return h;
}

/**
 * The smallest ε such that the mechanism is (ε, δ)-DP, over the given orders.
 *
 * `improved` (the default) is the conversion of Balle et al. 2020 ("Hypothesis testing
 * interpretations and Rényi differential privacy", Prop. 12), also Canonne, Kamath and
 * Steinke 2020 eq. 20 — what TF Privacy (since 2021) and Opacus use:
 *   ε = rdp + log(1 − 1/α) − log(δ·α)/(α − 1).
 * `classic` is Mironov 2017, Prop. 3: ε = rdp − log(δ)/(α − 1), which TF Privacy used when
 * it published its MNIST figures; it is looser, and kept to test against those figures.
 */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: RdpConversion = 'improved',
): PrivacySpent {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`δ must lie in (0, 1), got ${delta}`);
  if (orders.length !== rdp.length || orders.length === 0) {
    throw new RangeError('need one RDP value for each order, and at least one order');
  }
  let best: PrivacySpent = { epsilon: Infinity, order: orders[0] };
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (!(a > 1)) throw new RangeError(`RDP orders must exceed 1, got ${a}`);
    if (!(r >= 0)) throw new RangeError(`RDP values must be ≥ 0, got ${r}`);
    let eps: number;
    if (conversion === 'classic') {
      eps = r - Math.log(delta) / (a - 1);
    } else if (delta * delta + Math.expm1(-r) >= 0) {
      // The KL bound δ ≤ sqrt(1 − e^−rdp) already gives ε = 0 at this δ.
      eps = 0;
    } else if (a > 1.01) {
      eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    } else {
      // The improved bound is numerically unstable as α → 1, and useless there anyway.
      eps = Infinity;
    }
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  }
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

/** What the coordinator persists between rounds: RDP is additive over compositions. */
export interface AccountantState {
  orders: number[];
  rdp: number[];
}

/** Running privacy budget of a training run: one `step` per released aggregate. */
export class RdpAccountant {
  private readonly orderList: readonly number[];
  private readonly total: number[];

  constructor(orders: readonly number[] = DEFAULT_ORDERS) {
    if (orders.length === 0) throw new RangeError('an accountant needs at least one order');
    for (const a of orders) {
      if (!(a > 1) || !Number.isFinite(a)) {
        throw new RangeError(`RDP orders must be finite and exceed 1, got ${a}`);
      }
    }
    this.orderList = Object.freeze([...orders]);
    this.total = orders.map(() => 0);
  }

  static restore(state: AccountantState): RdpAccountant {
    if (state.orders.length !== state.rdp.length) {
      throw new RangeError('accountant state has a different number of orders and RDP values');
    }
    const accountant = new RdpAccountant(state.orders);
    state.rdp.forEach((r, k) => {
      if (!(r >= 0)) throw new RangeError(`accountant state holds an invalid RDP value ${r}`);
      accountant.total[k] = r;
    });
    return accountant;
  }

  get orders(): readonly number[] {
    return this.orderList;
  }

  /** Composes `steps` releases of the sampled Gaussian mechanism with these parameters. */
  step(noiseMultiplier: number, sampleRate: number, steps = 1): void {
    const added = computeRdp(sampleRate, noiseMultiplier, steps, this.orderList);
    added.forEach((r, k) => (this.total[k] += r));
  }

  epsilon(delta: number, conversion: RdpConversion = 'improved'): PrivacySpent {
    return rdpToEpsilon(this.orderList, this.total, delta, conversion);
  }

  state(): AccountantState {
    return { orders: [...this.orderList], rdp: [...this.total] };
  }
}
