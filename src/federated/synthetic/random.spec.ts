import { Sampler } from './random';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]) => {
  const m = mean(xs);
  return xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length;
};
const draws = (n: number, draw: () => number) => Array.from({ length: n }, draw);

describe('seeded sampling', () => {
  it('gives the same numbers for the same seed, purpose and index', () => {
    const a = Sampler.stream(42, 1, 7);
    const b = Sampler.stream(42, 1, 7);
    expect(draws(50, () => a.uniform())).toEqual(draws(50, () => b.uniform()));
  });

  it('gives unrelated streams for another seed, purpose or index', () => {
    const first = (s: Sampler) => draws(5, () => s.uniform());
    const base = first(Sampler.stream(42, 1, 7));
    expect(first(Sampler.stream(43, 1, 7))).not.toEqual(base);
    expect(first(Sampler.stream(42, 2, 7))).not.toEqual(base);
    expect(first(Sampler.stream(42, 1, 8))).not.toEqual(base);
  });

  it('spreads neighbouring patients’ first draws evenly over [0, 1)', () => {
    const firsts = Array.from({ length: 20_000 }, (_, i) => Sampler.stream(1, 1, i).uniform());
    const bins = new Array(10).fill(0);
    for (const u of firsts) bins[Math.floor(u * 10)]++;
    // χ² with 9 degrees of freedom: 27.9 is its 99.9th percentile.
    const chi2 = bins.reduce((a, n) => a + (n - 2000) ** 2 / 2000, 0);
    expect(chi2).toBeLessThan(27.9);
  });

  it('draws standard normals', () => {
    const s = Sampler.stream(1, 2);
    const xs = draws(40_000, () => s.normal());
    expect(mean(xs)).toBeCloseTo(0, 1);
    expect(variance(xs)).toBeCloseTo(1, 1);
  });

  it.each([0.05, 0.5, 1, 3.5])('draws Gamma(%p) with mean and variance equal to its shape', (k) => {
    const s = Sampler.stream(2, 3);
    const xs = draws(40_000, () => s.gamma(k));
    expect(xs.every((x) => x >= 0 && Number.isFinite(x))).toBe(true);
    expect(Math.abs(mean(xs) - k)).toBeLessThan(0.03 * Math.max(1, k));
    expect(Math.abs(variance(xs) - k)).toBeLessThan(0.1 * Math.max(1, k));
  });

  it('draws Dirichlet shares that are non-negative, sum to 1 and average 1/k', () => {
    const s = Sampler.stream(3, 4);
    const shares = Array.from({ length: 5_000 }, () => s.dirichlet(0.5, 4));
    expect(shares.every((p) => p.every((x) => x >= 0))).toBe(true);
    const worst = Math.max(...shares.map((p) => Math.abs(p.reduce((a, b) => a + b, 0) - 1)));
    expect(worst).toBeLessThan(1e-12);
    for (let j = 0; j < 4; j++) expect(mean(shares.map((p) => p[j]))).toBeCloseTo(0.25, 1);
  });

  it('keeps Dirichlet draws finite when α is so small that Gamma draws underflow', () => {
    const s = Sampler.stream(4, 5);
    for (let i = 0; i < 200; i++) {
      const p = s.dirichlet(0.001, 3);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });

  it('rejects a Gamma shape that is not a positive number', () => {
    const s = Sampler.stream(5, 6);
    expect(() => s.gamma(0)).toThrow(RangeError);
    expect(() => s.gamma(Number.NaN)).toThrow(RangeError);
  });

  it('shuffles into a permutation of its input', () => {
    const s = Sampler.stream(6, 7);
    const items = Array.from({ length: 100 }, (_, i) => i);
    const shuffled = s.shuffle(items);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items);
  });
});
