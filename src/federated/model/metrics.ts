// Binary classification metrics from log-odds, in plain TypeScript and float64, so that they
// are exact and the same whichever TF.js backend produced the scores.

/**
 * Area under the ROC curve, exactly: the Mann–Whitney statistic from mid-ranks, i.e. the
 * probability that a random positive scores above a random negative, ties counting half.
 * NaN when `labels` hold only one class (the AUC is then undefined).
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPaired(scores, labels);
  const n = scores.length;
  // A comparison rather than a difference: ∞ − ∞ would be NaN.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    scores[a] < scores[b] ? -1 : scores[a] > scores[b] ? 1 : 0,
  );
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && scores[order[end]] === scores[order[start]]) end++;
    // Ranks start + 1 … end share their mean.
    const midRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) {
      if (labels[order[k]] === 1) {
        positives++;
        positiveRankSum += midRank;
      }
    }
    start = end;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Mean binary cross-entropy (natural log) of σ(logit) against the labels; exact for any logit,
 * infinite ones included (a confidently wrong infinite logit costs ∞).
 */
export function meanLogLoss(logits: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPaired(logits, labels);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i];
    // −log σ(m) for the margin m = ±z = max(−m, 0) + log(1 + e^−|z|); no ∞ − ∞ for infinite z.
    const margin = labels[i] === 1 ? z : -z;
    total += Math.max(-margin, 0) + Math.log1p(Math.exp(-Math.abs(z)));
  }
  return total / logits.length;
}

/** Share of examples on the right side of σ(logit) = 0.5 (a logit of 0 predicts positive). */
export function accuracy(logits: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPaired(logits, labels);
  let right = 0;
  for (let i = 0; i < logits.length; i++) {
    if ((logits[i] >= 0 ? 1 : 0) === labels[i]) right++;
  }
  return right / logits.length;
}

function checkPaired(scores: ArrayLike<number>, labels: ArrayLike<number>): void {
  if (scores.length !== labels.length) {
    throw new RangeError(`${scores.length} scores for ${labels.length} labels`);
  }
  if (scores.length === 0) throw new RangeError('no examples to score');
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw new RangeError(`score ${i} is not a number`);
    if (labels[i] !== 0 && labels[i] !== 1) throw new RangeError(`label ${i} is not 0 or 1`);
  }
}
