import type { FhirResource } from '../../records/fhir';
// The cohort module itself: the synthetic package's index also loads the server-side seeding.
import {
  ageInYears,
  generateCohort,
  OBSERVATIONS,
  toFhir,
  TYPE_2_DIABETES,
} from '../synthetic/cohort';
import {
  AGE_LOINC,
  buildExample,
  buildExamples,
  FEATURE_SCALES,
  PLAUSIBLE,
  standardise,
  type ExampleDefinition,
} from './features';

const PATIENT_ID = '6f0d3a4e-1f5b-4c1e-9d7a-2b8e5c3a9f10';
const GLUCOSE = '2345-7';
const HBA1C = '4548-4';
const AS_OF = '2025-01-01T00:00:00Z';
const definition: ExampleDefinition = {
  features: [GLUCOSE, HBA1C, '39156-5', '8480-6', '2085-9', AGE_LOINC],
  label: TYPE_2_DIABETES.code,
  asOf: AS_OF,
};

const patient: FhirResource = { resourceType: 'Patient', id: PATIENT_ID, birthDate: '1975-01-01' };

function glucose(value: number, at: string, extra: Record<string, unknown> = {}): FhirResource {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: GLUCOSE }] },
    effectiveDateTime: at,
    valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    ...extra,
  };
}

function diabetes(clinical: string, verification = 'confirmed'): FhirResource {
  return {
    resourceType: 'Condition',
    clinicalStatus: { coding: [{ code: clinical }] },
    verificationStatus: { coding: [{ code: verification }] },
    code: { coding: [{ ...TYPE_2_DIABETES }] },
  };
}

const glucoseOnly = { ...definition, features: [GLUCOSE] };
const valueOf = (resources: FhirResource[]) => {
  const example = buildExample(resources, glucoseOnly);
  return example.included ? example.x[0] * FEATURE_SCALES[GLUCOSE].scale + 100 : undefined;
};

describe('examples from a synthetic patient’s FHIR resources', () => {
  const cohort = generateCohort({ patients: 60, sites: 2, seed: 42 });

  it('standardise every recorded measurement on its fixed reference scale, in study order', () => {
    for (const p of cohort.patients) {
      const example = buildExample(toFhir(p, PATIENT_ID), definition);
      expect(example.included).toBe(true);
      if (!example.included) continue;
      OBSERVATIONS.forEach((o) => {
        const i = definition.features.indexOf(o.loinc);
        expect(example.x[i]).toBeCloseTo(standardise(o.loinc, p.features[o.feature]), 12);
      });
      const age = ageInYears(p.birthDate, AS_OF);
      expect(example.x[5]).toBeCloseTo((age - 50) / 15, 12);
    }
  });

  it('label a patient 1 exactly when the cohort gave them type 2 diabetes', () => {
    const { y } = buildExamples(
      cohort.patients.map((p) => toFhir(p, PATIENT_ID)),
      definition,
    );
    expect(y).toEqual(cohort.patients.map((p) => p.label));
    expect(y).toContain(1);
    expect(y).toContain(0);
  });
});

describe('choosing a measurement', () => {
  it('takes the latest value taken at or before the reference date', () => {
    expect(
      valueOf([
        glucose(90, '2023-05-01T09:00:00Z'),
        glucose(130, '2024-11-30T09:00:00Z'),
        glucose(110, '2024-02-01T09:00:00Z'),
        glucose(200, '2025-03-01T09:00:00Z'),
      ]),
    ).toBeCloseTo(130, 10);
  });

  it('ignores results that are not final, amended or corrected', () => {
    expect(
      valueOf([
        glucose(95, '2024-01-01T09:00:00Z'),
        glucose(300, '2024-06-01T09:00:00Z', { status: 'entered-in-error' }),
        glucose(301, '2024-06-02T09:00:00Z', { status: 'preliminary' }),
        glucose(120, '2024-05-01T09:00:00Z', { status: 'amended' }),
      ]),
    ).toBeCloseTo(120, 10);
  });

  it('passes over a value no living patient has (an entry or unit error) for the latest plausible one', () => {
    expect(
      valueOf([glucose(99, '2024-01-01T09:00:00Z'), glucose(1e9, '2024-06-01T09:00:00Z')]),
    ).toBeCloseTo(99, 10);
    expect(valueOf([glucose(-50, '2024-06-01T09:00:00Z')])).toBeUndefined();
    // Every feature measured from an Observation has its bounds.
    for (const code of Object.keys(FEATURE_SCALES).filter((c) => c !== AGE_LOINC)) {
      expect(PLAUSIBLE[code]).toBeDefined();
    }
  });

  it('ignores values in another unit rather than mixing units', () => {
    const mmol = glucose(7, '2024-06-01T09:00:00Z', {
      valueQuantity: {
        value: 7,
        unit: 'mmol/L',
        system: 'http://unitsofmeasure.org',
        code: 'mmol/L',
      },
    });
    expect(valueOf([glucose(99, '2024-01-01T09:00:00Z'), mmol])).toBeCloseTo(99, 10);
  });

  it('dates an observation by its period’s end, or when it was issued', () => {
    const { effectiveDateTime: _, ...undated } = glucose(150, '');
    expect(
      valueOf([
        glucose(99, '2024-01-01T09:00:00Z'),
        { ...undated, effectivePeriod: { start: '2023-12-01', end: '2024-02-01' } },
      ]),
    ).toBeCloseTo(150, 10);
    expect(valueOf([{ ...undated, issued: '2024-03-01T10:00:00Z' }])).toBeCloseTo(150, 10);
    expect(valueOf([undated])).toBeUndefined();
  });
});

describe('a patient with a feature missing', () => {
  it('is skipped, and the missing features are counted', () => {
    const complete = [patient, glucose(100, '2024-01-01T09:00:00Z')];
    const set = buildExamples([complete, [patient], [glucose(100, '2024-01-01T09:00:00Z')], []], {
      ...definition,
      features: [GLUCOSE, AGE_LOINC],
    });
    expect(set.x).toHaveLength(1);
    expect(set.x[0][0]).toBe(0);
    expect(set.x[0][1]).toBeCloseTo(0, 3); // 50 years (of 365.25 days) at the reference date
    expect(set.skipped).toBe(3);
    expect(set.missing).toEqual({ [GLUCOSE]: 2, [AGE_LOINC]: 2 });
  });

  it('is as old as at death when the patient died before the reference date, of no age when it is not known when', () => {
    const ageOnly = { ...definition, features: [AGE_LOINC] };
    const ageOf = (p: FhirResource) => {
      const example = buildExample([p], ageOnly);
      return example.included ? example.x[0] * 15 + 50 : undefined;
    };
    expect(ageOf(patient)).toBeCloseTo(50, 2);
    expect(ageOf({ ...patient, deceasedDateTime: '2015-01-01' })).toBeCloseTo(40, 2);
    // Dying after the reference date changes nothing at it.
    expect(ageOf({ ...patient, deceasedDateTime: '2030-01-01' })).toBeCloseTo(50, 2);
    expect(ageOf({ ...patient, deceasedBoolean: true })).toBeUndefined();
    expect(ageOf({ ...patient, deceasedBoolean: false })).toBeCloseTo(50, 2);
  });

  it('reports which features it lacks', () => {
    expect(buildExample([patient], definition)).toEqual({
      included: false,
      missing: [GLUCOSE, HBA1C, '39156-5', '8480-6', '2085-9'],
    });
  });
});

describe('the label', () => {
  const labelOf = (...resources: FhirResource[]) => {
    const example = buildExample([glucose(100, '2024-01-01T09:00:00Z'), ...resources], glucoseOnly);
    return example.included ? example.y : undefined;
  };

  it('is 1 for an active, recurring or relapsed Condition with the study’s code', () => {
    expect(labelOf(diabetes('active'))).toBe(1);
    expect(labelOf(diabetes('recurrence'))).toBe(1);
    expect(labelOf(diabetes('relapse'))).toBe(1);
  });

  it('is 0 for a resolved, refuted or mistaken Condition, another code, or none', () => {
    expect(labelOf(diabetes('resolved'))).toBe(0);
    expect(labelOf(diabetes('active', 'refuted'))).toBe(0);
    expect(labelOf(diabetes('active', 'entered-in-error'))).toBe(0);
    const otherCode = {
      ...diabetes('active'),
      code: { coding: [{ system: 'http://snomed.info/sct', code: '46635009' }] },
    };
    expect(labelOf(otherCode)).toBe(0);
    expect(labelOf()).toBe(0);
  });
});

describe('an example definition', () => {
  it('refuses features without a reference scale, repeats, a bad label or date', () => {
    expect(() => buildExamples([], { ...definition, features: ['1234-5'] })).toThrow(/1234-5/);
    expect(() => buildExamples([], { ...definition, features: ['constructor'] })).toThrow(
      RangeError,
    );
    expect(() => buildExamples([], { ...definition, features: [GLUCOSE, GLUCOSE] })).toThrow(
      RangeError,
    );
    expect(() => buildExamples([], { ...definition, features: [] })).toThrow(RangeError);
    expect(() => buildExamples([], { ...definition, label: 'diabetes' })).toThrow(RangeError);
    expect(() => buildExamples([], { ...definition, asOf: 'soon' })).toThrow(RangeError);
  });
});
