import { randomBytes } from 'node:crypto';
import {
  DecisionInputs,
  inputCommitment,
  metadataFor,
  standardisedInputs,
  unitsOf,
} from './decision-inputs';

const metadata = metadataFor('LOGISTIC', ['2345-7', '30525-0'], '44054006');

function inputs(glucose = 130): DecisionInputs {
  return {
    asOf: '2026-01-01T00:00:00.000Z',
    features: [
      {
        code: '2345-7',
        display: 'Glucose',
        value: glucose,
        unit: 'mg/dL',
        source: {
          recordId: 'r1',
          version: 1,
          resourceType: 'Observation',
          category: 'laboratory',
          sensitivity: 'NORMAL',
        },
      },
      {
        code: '30525-0',
        display: 'Age',
        value: 65,
        unit: 'a',
        source: {
          recordId: 'r2',
          version: 2,
          resourceType: 'Patient',
          category: null,
          sensitivity: 'NORMAL',
        },
      },
    ],
  };
}

describe('decision inputs', () => {
  it("takes units and scales from the model's metadata", () => {
    expect(unitsOf(metadata)).toEqual({ '2345-7': 'mg/dL', '30525-0': 'a' });
    expect(standardisedInputs(metadata, inputs())).toEqual([(130 - 100) / 25, (65 - 50) / 15]);
  });

  it('refuses inputs in another order or unit', () => {
    const swapped = inputs();
    swapped.features.reverse();
    expect(() => standardisedInputs(metadata, swapped)).toThrow('input 1 must be 2345-7 in mg/dL');
    const mmol = inputs();
    mmol.features[0].unit = 'mmol/L';
    expect(() => standardisedInputs(metadata, mmol)).toThrow(RangeError);
  });

  it('commits to the canonical inputs, whatever the key order, and to the salt', () => {
    const salt = randomBytes(32);
    const reordered = JSON.parse(JSON.stringify(inputs()), (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).reverse())
        : v,
    ) as DecisionInputs;
    expect(inputCommitment(salt, reordered)).toBe(inputCommitment(salt, inputs()));
    expect(inputCommitment(salt, inputs(131))).not.toBe(inputCommitment(salt, inputs()));
    expect(inputCommitment(randomBytes(32), inputs())).not.toBe(inputCommitment(salt, inputs()));
    expect(inputCommitment(salt, inputs())).toMatch(/^[0-9a-f]{64}$/);
  });
});
