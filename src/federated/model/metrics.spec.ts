import fc from 'fast-check';
import { accuracy, meanLogLoss, rocAuc } from './metrics';

/** The AUC by its definition: over all positive–negative pairs, wins plus half the ties. */
function pairwiseAuc(scores: number[], labels: number[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((p, i) => {
    if (labels[i] !== 1) return;
    scores.forEach((n, j) => {
      if (labels[j] !== 0) return;
      pairs++;
      wins += p > n ? 1 : p === n ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

describe('the ROC AUC', () => {
  it('equals the pairwise definition for any scores, ties included', () => {
    fc.assert(
      fc.property(
        // Few distinct scores, so that ties are common.
        fc.array(fc.tuple(fc.integer({ min: -4, max: 4 }), fc.integer({ min: 0, max: 1 })), {
          minLength: 2,
          maxLength: 60,
        }),
        (rows) => {
          const scores = rows.map(([s]) => s / 2);
          const labels = rows.map(([, l]) => l);
          fc.pre(labels.includes(0) && labels.includes(1));
          expect(rocAuc(scores, labels)).toBeCloseTo(pairwiseAuc(scores, labels), 12);
        },
      ),
    );
  });

  it('is 1 for a perfect ranking, 0 for an inverted one and 0.5 when all scores tie', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([3, 3, 3, 3, 3], [0, 1, 0, 1, 1])).toBe(0.5);
    // Positives ∞ and 0 against negatives −∞ and ∞: two wins, a tie and a loss.
    expect(rocAuc([-Infinity, Infinity, Infinity, 0], [0, 1, 0, 1])).toBe(0.625);
  });

  it('is NaN when the examples hold only one class', () => {
    expect(rocAuc([0.1, 0.7], [1, 1])).toBeNaN();
  });

  it('refuses unpaired, empty or NaN input and labels other than 0 and 1', () => {
    expect(() => rocAuc([1, 2], [1])).toThrow(RangeError);
    expect(() => rocAuc([], [])).toThrow(RangeError);
    expect(() => rocAuc([NaN, 1], [0, 1])).toThrow(RangeError);
    expect(() => rocAuc([0, 1], [0, 2])).toThrow(RangeError);
  });
});

describe('the log loss', () => {
  it('is the binary cross-entropy of the sigmoid of the logits', () => {
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    const logits = [-2, -0.5, 0, 1, 3];
    const labels = [0, 1, 1, 0, 1];
    const direct =
      logits.reduce(
        (sum, z, i) => sum - (labels[i] ? Math.log(sigmoid(z)) : Math.log(1 - sigmoid(z))),
        0,
      ) / logits.length;
    expect(meanLogLoss(logits, labels)).toBeCloseTo(direct, 12);
  });

  it('stays finite and exact for logits where the sigmoid saturates', () => {
    expect(meanLogLoss([800], [0])).toBe(800);
    expect(meanLogLoss([800], [1])).toBe(0);
    expect(meanLogLoss([-800], [1])).toBe(800);
    expect(meanLogLoss([-Infinity, Infinity], [0, 1])).toBe(0);
    expect(meanLogLoss([-Infinity], [1])).toBe(Infinity);
  });
});

describe('accuracy', () => {
  it('predicts positive from a logit of 0 upwards', () => {
    expect(accuracy([-1, 0, 2, -3], [0, 1, 0, 1])).toBe(0.5);
  });
});
