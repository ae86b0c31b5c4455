import fc from 'fast-check';
import { computeRdp, DEFAULT_ORDERS, logA, logErfc, RdpAccountant, rdpToEpsilon } from './rdp';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

// Orders of TF Privacy's compute_dp_sgd_privacy.py (2019) and of its MNIST tutorial.
const CLI_ORDERS = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];
const TUTORIAL_ORDERS = [...range(1, 100).map((x) => 1 + x / 10), ...range(12, 64)];
const MNIST_Q = 256 / 60000;

describe('RDP of the sampled Gaussian mechanism', () => {
  describe('against TF Privacy’s published values', () => {
    it('gives 0.07737 at order 5 for q = 0.1, σ = 2 over 10 steps (rdp_accountant_test)', () => {
      expect(computeRdp(0.1, 2, 10, [5])[0]).toBeCloseTo(0.07737, 5);
    });

    it('gives the published sequence for q = 0.01, σ = 2.5, 50 steps, fractional orders included', () => {
      const rdp = computeRdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, Infinity]);
      const published = [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2];
      published.forEach((value, k) => expect(Math.abs(rdp[k] / value - 1)).toBeLessThan(1e-4));
      expect(rdp[5]).toBe(Infinity);
    });

    it('gives ε = 1.258575 at order 20 for q = 0.01, σ = 4, 10 000 steps (classic conversion)', () => {
      const orders = range(2, 33);
      const spent = rdpToEpsilon(orders, computeRdp(0.01, 4, 10000, orders), 1e-5, 'classic');
      expect(spent.epsilon).toBeCloseTo(1.258575, 6);
      expect(spent.order).toBe(20);
    });

    it('gives ε = 8.509656 at order 2.5 for the composition of two mechanisms (classic)', () => {
      const orders = [
        1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256,
      ];
      const accountant = new RdpAccountant(orders);
      accountant.step(0.4, 1e-4, 40000);
      accountant.step(2, 0.1, 100);
      const spent = accountant.epsilon(1e-5, 'classic');
      expect(spent.epsilon).toBeCloseTo(8.509656, 6);
      expect(spent.order).toBe(2.5);
      // The improved conversion is an upper bound too, and a tighter one.
      expect(accountant.epsilon(1e-5).epsilon).toBeLessThanOrEqual(8.509656);
    });

    it('finds DP-SGD on MNIST (q = 256/60000, σ = 1.12, 60 epochs) (2.92, 1e-5)-DP, as compute_dp_sgd_privacy says', () => {
      const steps = Math.ceil((60 * 60000) / 256);
      const rdp = computeRdp(MNIST_Q, 1.12, steps, CLI_ORDERS);
      expect(rdpToEpsilon(CLI_ORDERS, rdp, 1e-5, 'classic').epsilon).toBeCloseTo(2.92, 2);
    });

    it('finds the tutorial’s default σ = 1.1 at 3.01 after 60 epochs, and 1.03, 1.11 after 1, 2', () => {
      const epsilonAfter = (sigma: number, epochs: number) =>
        rdpToEpsilon(
          TUTORIAL_ORDERS,
          computeRdp(MNIST_Q, sigma, epochs * Math.floor(60000 / 256), TUTORIAL_ORDERS),
          1e-5,
          'classic',
        ).epsilon;
      expect(epsilonAfter(1.1, 1)).toBeCloseTo(1.03, 2);
      expect(epsilonAfter(1.1, 2)).toBeCloseTo(1.11, 2);
      expect(epsilonAfter(1.1, 60)).toBeCloseTo(3.01, 2);
      // The README's table of other settings.
      expect(epsilonAfter(1.3, 15)).toBeCloseTo(1.19, 2);
      expect(epsilonAfter(0.7, 45)).toBeCloseTo(7.1, 2);
    });

    it('gives ε = 1.32783806176 at order 32 for a constant RDP of 1.1 (improved conversion)', () => {
      const orders = range(2, 33);
      const spent = rdpToEpsilon(
        orders,
        orders.map(() => 1.1),
        1e-5,
      );
      expect(spent.epsilon).toBeCloseTo(1.32783806176, 10);
      expect(spent.order).toBe(32);
    });

    it('finds the Gaussian mechanism with σ = 4.530877117 exactly (1, 1e-6)-DP (improved conversion)', () => {
      // TF's test starts at order 1.000, where RDP is a KL divergence; both conversions give
      // ε = ∞ below 1.01, so starting just above 1 changes nothing.
      const orders = range(1001, 100000).map((i) => 0.001 * i);
      const spent = rdpToEpsilon(orders, computeRdp(1, 4.530877117, 1, orders), 1e-6);
      expect(spent.epsilon).toBeCloseTo(1, 7);
    });
  });

  it('defaults to Opacus’s orders (1.1 to 10.9 by 0.1, then 12 to 63) and 128, 256', () => {
    expect(DEFAULT_ORDERS).toHaveLength(99 + 52 + 2);
    expect(DEFAULT_ORDERS.slice(0, 3)).toEqual([1.1, 1.2, 1.3]);
    expect(DEFAULT_ORDERS.slice(97, 102)).toEqual([10.8, 10.9, 12, 13, 14]);
    expect(DEFAULT_ORDERS.slice(-3)).toEqual([63, 128, 256]);
  });

  it('is α/(2σ²) per step without sampling, the plain Gaussian mechanism', () => {
    expect(computeRdp(1, 10, 1, [20])).toEqual([0.1]);
    expect(computeRdp(1, 2, 7, [1.5, 32])).toEqual([(7 * 1.5) / 8, (7 * 32) / 8]);
  });

  it('is zero when nobody is sampled and infinite without noise', () => {
    expect(computeRdp(0, 1, 5, [2, 2.5])).toEqual([0, 0]);
    expect(computeRdp(0.5, 0, 1, [2, 2.5])).toEqual([Infinity, Infinity]);
  });

  it('agrees with a direct numerical integration of the Rényi moment, integer and fractional orders alike', () => {
    const cases: [q: number, sigma: number, alpha: number][] = [
      [1e-3, 1, 2],
      [0.01, 2.5, 2.5],
      [0.01, 10, 20],
      [0.1, 100, 20.5],
      [0.1, 1, 7.5],
      [0.5, 1, 3.3],
      [0.05, 0.8, 1.25],
      [0.02, 0.5, 64.5],
      [0.99, 0.1, 256],
      [0.999, 100, 256.1],
      // Where TF Privacy's stopping rule ends the series at its first term.
      [0.056964193651979814, 9.53644086117803, 511.5],
      [0.95, 2, 10.5],
    ];
    for (const [q, sigma, alpha] of cases) {
      const integrated = logAByIntegration(q, sigma, alpha);
      expect(Math.abs(logA(q, sigma, alpha) / integrated - 1)).toBeLessThan(1e-9);
    }
  });

  it('stays finite and never decreases with the order, up to order 1024', () => {
    const orders = [
      1.1, 1.5, 2, 2.5, 3, 4.5, 8, 10.9, 16, 32.5, 64, 128, 256, 256.5, 511.5, 512, 1024,
    ];
    fc.assert(
      fc.property(
        fc.double({ min: 1e-6, max: 0.999, noNaN: true }),
        fc.double({ min: 0.3, max: 50, noNaN: true }),
        (q, sigma) => {
          const rdp = computeRdp(q, sigma, 1, orders);
          for (let k = 0; k < rdp.length; k++) {
            expect(Number.isFinite(rdp[k])).toBe(true);
            // Rényi divergences are non-decreasing in the order.
            if (k > 0) expect(rdp[k]).toBeGreaterThanOrEqual(rdp[k - 1] * (1 - 1e-9) - 1e-15);
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it('never costs more than the Gaussian mechanism without sampling', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-5, max: 0.99, noNaN: true }),
        fc.double({ min: 0.5, max: 20, noNaN: true }),
        fc.constantFrom(1.5, 2, 3.25, 8, 32),
        (q, sigma, alpha) => {
          const [sampled] = computeRdp(q, sigma, 1, [alpha]);
          expect(sampled).toBeLessThanOrEqual((alpha / (2 * sigma * sigma)) * (1 + 1e-12));
          expect(sampled).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('converts to an ε under the improved bound no larger than under the classic one', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-4, max: 1, noNaN: true }),
        fc.double({ min: 0.5, max: 10, noNaN: true }),
        fc.integer({ min: 1, max: 10000 }),
        (q, sigma, steps) => {
          const orders = [1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256];
          const rdp = computeRdp(q, sigma, steps, orders);
          const improved = rdpToEpsilon(orders, rdp, 1e-5).epsilon;
          expect(improved).toBeLessThanOrEqual(rdpToEpsilon(orders, rdp, 1e-5, 'classic').epsilon);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('rejects parameters outside the mechanism’s domain', () => {
    expect(() => computeRdp(1.5, 1, 1, [2])).toThrow(/sample rate/);
    expect(() => computeRdp(0.5, -1, 1, [2])).toThrow(/noise multiplier/);
    expect(() => computeRdp(0.5, 1, 1.5, [2])).toThrow(/steps/);
    expect(() => computeRdp(0.5, 1, 1, [1])).toThrow(/orders/);
    expect(() => rdpToEpsilon([2], [1], 0)).toThrow(/δ/);
    expect(() => rdpToEpsilon([2, 3], [1], 1e-5)).toThrow(/each order/);
  });
});

describe('RdpAccountant', () => {
  const orders = [1.5, 2, 2.5, 4, 8, 16, 32, 64];

  it('composes by adding RDP: k steps at once equal k single steps', () => {
    const once = new RdpAccountant(orders);
    once.step(1.1, 0.05, 3);
    const thrice = new RdpAccountant(orders);
    for (let k = 0; k < 3; k++) thrice.step(1.1, 0.05);
    thrice.state().rdp.forEach((r, k) => expect(r).toBeCloseTo(once.state().rdp[k], 12));
    expect(thrice.epsilon(1e-5).epsilon).toBeCloseTo(once.epsilon(1e-5).epsilon, 10);
  });

  it('spends more with every round', () => {
    const accountant = new RdpAccountant();
    let previous = 0;
    for (let round = 1; round <= 5; round++) {
      accountant.step(1, 1);
      const { epsilon } = accountant.epsilon(1e-5);
      expect(epsilon).toBeGreaterThan(previous);
      previous = epsilon;
    }
  });

  it('resumes from its persisted state with the same budget', () => {
    const accountant = new RdpAccountant(orders);
    accountant.step(0.8, 0.2, 10);
    const restored = RdpAccountant.restore(JSON.parse(JSON.stringify(accountant.state())));
    expect(restored.epsilon(1e-5)).toEqual(accountant.epsilon(1e-5));
    restored.step(0.8, 0.2);
    expect(restored.epsilon(1e-5).epsilon).toBeGreaterThan(accountant.epsilon(1e-5).epsilon);
  });

  it('rejects a persisted state that does not fit together', () => {
    expect(() => RdpAccountant.restore({ orders: [2, 3], rdp: [1] })).toThrow(/number of orders/);
    expect(() => RdpAccountant.restore({ orders: [2], rdp: [-1] })).toThrow(/invalid RDP/);
    expect(() => new RdpAccountant([])).toThrow(/at least one order/);
  });
});

describe('logErfc', () => {
  it('matches the C library’s erfc where erfc is representable', () => {
    // Math.log(math.erfc(x)) from CPython (glibc).
    const reference: [number, number][] = [
      [-3, 0.6931361352504468],
      [-1, 0.6112323176780705],
      [-0.1, 0.10657640058652244],
      [0, 0],
      [0.3, -0.3984300514400853],
      [1, -1.8496055099332482],
      [1.2, -2.4114403551669295],
      [1.25, -2.5626536619221256],
      [1.3, -2.7182209220903846],
      [2, -5.364941264616638],
      [3, -10.720363041981113],
      [5, -27.200889545537436],
      [10, -102.87988902484489],
      [20, -403.56934333410425],
      [26, -679.8311997631943],
    ];
    for (const [x, expected] of reference) {
      expect(Math.abs(logErfc(x) - expected)).toBeLessThanOrEqual(1e-14 * Math.max(1, -expected));
    }
  });

  it('follows the asymptotic series far beyond where erfc underflows', () => {
    for (const x of [30, 100, 1e4]) {
      const x2 = x * x;
      const series =
        1 - 1 / (2 * x2) + 3 / (4 * x2 ** 2) - 15 / (8 * x2 ** 3) + 105 / (16 * x2 ** 4);
      const expected = -x2 - Math.log(x * Math.sqrt(Math.PI)) + Math.log(series);
      expect(Math.abs(logErfc(x) - expected)).toBeLessThanOrEqual(1e-15 * x2);
    }
  });
});

/**
 * log A_α = log E_{z∼N(0,σ²)}[((1−q) + q·e^{(2z−1)/(2σ²)})^α] by the trapezoid rule in log
 * space — independent of the series in rdp.ts, and (for these smooth, fast-decaying
 * integrands) accurate to about 1e-12.
 */
function logAByIntegration(q: number, sigma: number, alpha: number): number {
  const logAdd = (x: number, y: number) => {
    const hi = Math.max(x, y);
    const lo = Math.min(x, y);
    return lo === -Infinity ? hi : hi + Math.log1p(Math.exp(lo - hi));
  };
  const from = -40 * sigma - 1;
  const to = alpha + 40 * sigma + 1;
  const h = sigma / 8;
  const n = Math.ceil((to - from) / h);
  const logNorm = -Math.log(sigma * Math.sqrt(2 * Math.PI));
  let sum = -Infinity;
  for (let k = 0; k <= n; k++) {
    const z = from + k * h;
    const t = (2 * z - 1) / (2 * sigma * sigma);
    const logF =
      logNorm - (z * z) / (2 * sigma * sigma) + alpha * logAdd(Math.log1p(-q), Math.log(q) + t);
    sum = logAdd(sum, logF + (k === 0 || k === n ? Math.log(0.5) : 0));
  }
  return sum + Math.log(h);
}
