// The Dirichlet label-skew partition used across the federated-learning literature (Yurochkin
// et al. 2019; Hsu et al. 2019): for each class, site shares p ~ Dir(α·1_K), and that
// class's examples are dealt to the sites in those shares. Small α gives sites very different
// label mixes (non-IID); large α approaches an even split.
import { Sampler } from './random';

/**
 * Every site receives at least min(MIN_PER_SITE_AND_CLASS, ⌊n_c / K⌋) examples of each class
 * c, where n_c is that class's size: so once a class has 3·K examples every site sees at least
 * 3 of it, and once it has K, at least one. Without that floor a small α often leaves a site
 * with no positives at all, and a site without both classes cannot train a classifier.
 */
export const MIN_PER_SITE_AND_CLASS = 3;

/**
 * Splits `total` into parts proportional to `shares` that sum exactly to `total`: floors
 * first, then the remainder by largest fractional part (ties to the lower index), so that
 * rounding never loses or invents an example.
 */
export function apportion(total: number, shares: readonly number[]): number[] {
  const quotas = shares.map((s) => s * total);
  const counts = quotas.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = quotas
    .map((q, i) => ({ i, frac: q - Math.floor(q) }))
    .sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let j = 0; left > 0; j = (j + 1) % order.length, left--) counts[order[j].i]++;
  return counts;
}

/**
 * The site (0 … sites−1) of each example, given its class label. Deterministic in the
 * sampler's stream: classes are visited in ascending order, each shuffled, then dealt.
 */
export function dirichletLabelPartition(
  labels: readonly number[],
  sites: number,
  alpha: number,
  sampler: Sampler,
): number[] {
  if (!Number.isInteger(sites) || sites < 1) throw new RangeError('sites must be at least 1');
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new RangeError('alpha must be a positive number');
  }
  const siteOf = new Array<number>(labels.length).fill(-1);
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  for (const c of classes) {
    const members = sampler.shuffle(labels.flatMap((l, i) => (l === c ? [i] : [])));
    const floor = Math.min(MIN_PER_SITE_AND_CLASS, Math.floor(members.length / sites));
    const shares = sampler.dirichlet(alpha, sites);
    const counts = apportion(members.length - floor * sites, shares).map((n) => n + floor);
    let next = 0;
    counts.forEach((n, site) => {
      for (const i of members.slice(next, next + n)) siteOf[i] = site;
      next += n;
    });
  }
  return siteOf;
}
