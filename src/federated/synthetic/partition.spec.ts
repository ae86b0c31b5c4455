import fc from 'fast-check';
import { apportion, dirichletLabelPartition, MIN_PER_SITE_AND_CLASS } from './partition';
import { Sampler } from './random';

/** Labels of a cohort of `n` with the first `positives` positive. */
const labelsOf = (n: number, positives: number) =>
  Array.from({ length: n }, (_, i) => (i < positives ? 1 : 0));

/** How many of class `c` each site received. */
function perSite(labels: number[], siteOf: number[], sites: number, c: number): number[] {
  const counts = new Array<number>(sites).fill(0);
  labels.forEach((l, i) => {
    if (l === c) counts[siteOf[i]]++;
  });
  return counts;
}

/**
 * The skew statistic: per class, the total-variation distance between the sites' shares of
 * that class and an even split (0 = perfectly even, 1 − 1/K = all at one site), averaged
 * over the classes.
 */
function labelSkew(labels: number[], siteOf: number[], sites: number): number {
  const distances = [0, 1].map((c) => {
    const counts = perSite(labels, siteOf, sites, c);
    const total = counts.reduce((a, b) => a + b, 0);
    return counts.reduce((a, n) => a + Math.abs(n / total - 1 / sites), 0) / 2;
  });
  return (distances[0] + distances[1]) / 2;
}

const meanSkew = (alpha: number, seeds = 20) => {
  const labels = labelsOf(3000, 900);
  let total = 0;
  for (let seed = 0; seed < seeds; seed++) {
    const siteOf = dirichletLabelPartition(labels, 3, alpha, Sampler.stream(seed, 9));
    total += labelSkew(labels, siteOf, 3);
  }
  return total / seeds;
};

describe('apportioning a class across sites', () => {
  it('hands out exactly the total, each part within one of its exact share', () => {
    fc.assert(
      fc.property(
        fc.nat(10_000),
        fc.array(fc.double({ min: 0.001, max: 1, noNaN: true }), { minLength: 1, maxLength: 12 }),
        (total, raw) => {
          const sum = raw.reduce((a, b) => a + b, 0);
          const shares = raw.map((x) => x / sum);
          const counts = apportion(total, shares);
          expect(counts.reduce((a, b) => a + b, 0)).toBe(total);
          counts.forEach((n, i) => expect(Math.abs(n - shares[i] * total)).toBeLessThan(1 + 1e-9));
        },
      ),
    );
  });
});

describe('the Dirichlet label-skew partition', () => {
  it('assigns every patient to exactly one existing site', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 8 }),
        fc.double({ min: 0.01, max: 100, noNaN: true }),
        fc.nat(),
        (labels, sites, alpha, seed) => {
          const siteOf = dirichletLabelPartition(labels, sites, alpha, Sampler.stream(seed, 9));
          expect(siteOf).toHaveLength(labels.length);
          expect(siteOf.every((s) => Number.isInteger(s) && s >= 0 && s < sites)).toBe(true);
        },
      ),
    );
  });

  it('gives every site at least min(3, ⌊class size / K⌋) patients of each class', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 6 }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        fc.nat(),
        (n, prevalence, sites, alpha, seed) => {
          const labels = labelsOf(n, Math.round(n * prevalence));
          const siteOf = dirichletLabelPartition(labels, sites, alpha, Sampler.stream(seed, 9));
          for (const c of [0, 1]) {
            const size = labels.filter((l) => l === c).length;
            const floor = Math.min(MIN_PER_SITE_AND_CLASS, Math.floor(size / sites));
            for (const count of perSite(labels, siteOf, sites, c)) {
              expect(count).toBeGreaterThanOrEqual(floor);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is the same split for the same stream', () => {
    const labels = labelsOf(500, 140);
    const a = dirichletLabelPartition(labels, 4, 0.5, Sampler.stream(1, 9));
    const b = dirichletLabelPartition(labels, 4, 0.5, Sampler.stream(1, 9));
    expect(a).toEqual(b);
  });

  it('splits each class almost evenly when α is large', () => {
    const labels = labelsOf(3000, 900);
    const siteOf = dirichletLabelPartition(labels, 3, 1000, Sampler.stream(1, 9));
    for (const c of [0, 1]) {
      const counts = perSite(labels, siteOf, 3, c);
      const total = counts.reduce((a, b) => a + b, 0);
      for (const n of counts) expect(Math.abs(n / total - 1 / 3)).toBeLessThan(0.05);
    }
    expect(meanSkew(1000)).toBeLessThan(0.03);
  });

  it('skews the classes across sites when α is small, more so the smaller α is', () => {
    const skew = { tiny: meanSkew(0.1), half: meanSkew(0.5), large: meanSkew(100) };
    expect(skew.tiny).toBeGreaterThan(0.4);
    expect(skew.half).toBeGreaterThan(0.2);
    expect(skew.tiny).toBeGreaterThan(skew.half);
    expect(skew.half).toBeGreaterThan(skew.large);
  });

  it('rejects a non-positive α or site count', () => {
    const s = Sampler.stream(1, 9);
    expect(() => dirichletLabelPartition([0, 1], 2, 0, s)).toThrow(RangeError);
    expect(() => dirichletLabelPartition([0, 1], 0, 0.5, s)).toThrow(RangeError);
  });
});
