import type { FhirResource } from '../../records/fhir';
import { AGE_LOINC, buildExample, featureValues, standardise } from './features';
import { loadPredictiveModel } from './predict';

const observation = (code: string, value: number, unit: string, at: string): FhirResource => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code }] },
  effectiveDateTime: at,
  valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
});

const resources: FhirResource[] = [
  observation('2345-7', 150, 'mg/dL', '2025-01-01T00:00:00Z'),
  { resourceType: 'Patient', birthDate: '1970-01-01' },
  observation('2345-7', 110, 'mg/dL', '2025-06-01T00:00:00Z'),
  observation('2345-7', 6.1, 'mmol/L', '2025-07-01T00:00:00Z'),
];
const units = { '2345-7': 'mg/dL', [AGE_LOINC]: 'a' };

describe('featureValues', () => {
  it('reads the values training reads, with the index of the resource each came from', () => {
    const asOf = '2026-01-01T00:00:00.000Z';
    const { values, missing } = featureValues(resources, ['2345-7', AGE_LOINC], asOf, units);
    expect(missing).toEqual([]);
    expect(values.map(({ code, unit, source }) => ({ code, unit, source }))).toEqual([
      { code: '2345-7', unit: 'mg/dL', source: 2 },
      { code: AGE_LOINC, unit: 'a', source: 1 },
    ]);
    // The same numbers as a training example of the same resources at the same instant.
    const example = buildExample(resources, {
      features: ['2345-7', AGE_LOINC],
      label: '44054006',
      asOf,
    });
    expect(example.included && example.x).toEqual(values.map((v) => standardise(v.code, v.value)));
  });

  it('reads each code in the unit it is given, and names what is missing', () => {
    const asOf = '2026-01-01T00:00:00.000Z';
    const mmol = featureValues(resources, ['2345-7'], asOf, { '2345-7': 'mmol/L' });
    expect(mmol.values).toEqual([{ code: '2345-7', value: 6.1, unit: 'mmol/L', source: 3 }]);
    expect(featureValues(resources, ['2345-7', '4548-4'], asOf, units).missing).toEqual(['4548-4']);
    expect(featureValues(resources, ['2345-7'], '2024-12-31T00:00:00Z', units).missing).toEqual([
      '2345-7',
    ]);
  });
});

describe('loadPredictiveModel', () => {
  it('answers the logistic probability of its weights, the same every time', async () => {
    const model = await loadPredictiveModel('LOGISTIC', 2, new Float32Array([0.75, 0.5, -0.25]));
    try {
      const p = model.probability([0.4, 1.2]);
      expect(p).toBeCloseTo(1 / (1 + Math.exp(-(0.75 * 0.4 + 0.5 * 1.2 - 0.25))), 6);
      expect(model.probability([0.4, 1.2])).toBe(p);
      expect(() => model.probability([1])).toThrow(RangeError);
      expect(() => model.probability([1, NaN])).toThrow(RangeError);
    } finally {
      model.dispose();
    }
  });
});
