import { validatePatientResource } from '../../records/fhir';
import {
  ageInYears,
  FeatureName,
  generateCohort,
  OBSERVATIONS,
  RISK_MODEL,
  SyntheticPatient,
  toFhir,
} from './cohort';

const FEATURES: FeatureName[] = ['age', 'bmi', 'systolic', 'glucose', 'hba1c', 'hdl'];
const PATIENT_ID = '6f0d3a4e-1f5b-4c1e-9d7a-2b8e5c3a9f10';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
};
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Area under the ROC curve by the rank-sum (Mann–Whitney) statistic. */
function auc(scores: number[], labels: number[]): number {
  const order = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  let positives = 0;
  order.forEach((i, rank) => {
    if (labels[i] === 1) {
      rankSum += rank + 1;
      positives++;
    }
  });
  const negatives = labels.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** A plain logistic regression: standardise, then full-batch gradient descent. */
function fitLogistic(rows: number[][], labels: number[], steps = 300, rate = 0.5) {
  const d = rows[0].length;
  const centre = Array.from({ length: d }, (_, j) => mean(rows.map((r) => r[j])));
  const scale = Array.from({ length: d }, (_, j) => sd(rows.map((r) => r[j])));
  const z = (r: number[]) => r.map((x, j) => (x - centre[j]) / scale[j]);
  const xs = rows.map(z);
  const w = new Array<number>(d).fill(0);
  let b = 0;
  for (let step = 0; step < steps; step++) {
    const gw = new Array<number>(d).fill(0);
    let gb = 0;
    xs.forEach((x, i) => {
      const err = sigmoid(b + x.reduce((a, v, j) => a + v * w[j], 0)) - labels[i];
      x.forEach((v, j) => (gw[j] += err * v));
      gb += err;
    });
    w.forEach((_, j) => (w[j] -= (rate * gw[j]) / xs.length));
    b -= (rate * gb) / xs.length;
  }
  return { weights: w, score: (r: number[]) => b + z(r).reduce((a, v, j) => a + v * w[j], 0) };
}

const rowOf = (p: SyntheticPatient) => FEATURES.map((f) => p.features[f]);

describe('the synthetic cohort', () => {
  it('is identical for the same seed, size, sites and α', () => {
    const options = { patients: 200, sites: 3, seed: 42, alpha: 0.5 };
    expect(generateCohort(options)).toEqual(generateCohort(options));
  });

  it('differs for another seed', () => {
    const a = generateCohort({ patients: 50, sites: 3, seed: 1 });
    const b = generateCohort({ patients: 50, sites: 3, seed: 2 });
    expect(a.patients.map((p) => p.features)).not.toEqual(b.patients.map((p) => p.features));
  });

  it('keeps patient i the same whatever the cohort size, site count or α', () => {
    const small = generateCohort({ patients: 30, sites: 2, seed: 9, alpha: 5 });
    const large = generateCohort({ patients: 300, sites: 5, seed: 9, alpha: 0.1 });
    const drop = ({ site: _site, ...p }: SyntheticPatient) => p;
    expect(large.patients.slice(0, 30).map(drop)).toEqual(small.patients.map(drop));
  });

  it('defaults α to 0.5', () => {
    expect(generateCohort({ patients: 10, sites: 2, seed: 1 }).alpha).toBe(0.5);
  });

  it('has a type 2 diabetes prevalence between 20% and 35%', () => {
    for (const seed of [1, 7, 42]) {
      const { patients } = generateCohort({ patients: 3000, sites: 3, seed });
      const prevalence = mean(patients.map((p) => p.label));
      expect(prevalence).toBeGreaterThan(0.2);
      expect(prevalence).toBeLessThan(0.35);
    }
  });

  it('draws features near their reference means and SDs, within physiological ranges', () => {
    const { patients } = generateCohort({ patients: 5000, sites: 3, seed: 3 });
    const ranges: Record<FeatureName, [number, number]> = {
      age: [18, 91],
      bmi: [15, 60],
      systolic: [85, 220],
      glucose: [55, 400],
      hba1c: [4, 15],
      hdl: [20, 110],
    };
    for (const t of RISK_MODEL.terms) {
      const xs = patients.map((p) => p.features[t.feature]);
      expect(Math.abs(mean(xs) - t.centre)).toBeLessThan(0.1 * t.scale);
      expect(Math.abs(sd(xs) / t.scale - 1)).toBeLessThan(0.1);
      expect(Math.min(...xs)).toBeGreaterThanOrEqual(ranges[t.feature][0]);
      expect(Math.max(...xs)).toBeLessThanOrEqual(ranges[t.feature][1]);
    }
  });

  it('records the age the birth date and visit imply', () => {
    for (const p of generateCohort({ patients: 50, sites: 2, seed: 5 }).patients) {
      expect(p.features.age).toBe(ageInYears(p.birthDate, p.effectiveDateTime));
      expect(p.birthDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(Date.parse(p.effectiveDateTime)).toBeLessThan(Date.UTC(2025, 0, 1));
    }
  });

  it('gives positives a clearly higher mean risk than negatives', () => {
    const { patients } = generateCohort({ patients: 3000, sites: 3, seed: 11 });
    const risk = (label: number) =>
      mean(patients.filter((p) => p.label === label).map((p) => p.risk));
    expect(risk(1) - risk(0)).toBeGreaterThan(0.3);
  });

  it('lets a logistic regression recover the risk model: AUC above 0.8 on held-out patients', () => {
    const train = generateCohort({ patients: 3000, sites: 3, seed: 100 }).patients;
    const test = generateCohort({ patients: 2000, sites: 3, seed: 200 }).patients;
    const model = fitLogistic(
      train.map(rowOf),
      train.map((p) => p.label),
    );
    const learned = auc(
      test.map((p) => model.score(rowOf(p))),
      test.map((p) => p.label),
    );
    const ceiling = auc(
      test.map((p) => p.risk),
      test.map((p) => p.label),
    );
    expect(learned).toBeGreaterThan(0.8);
    expect(ceiling - learned).toBeLessThan(0.02);
    // The learned weights have the signs of the known ones (HDL protective, the rest risks).
    RISK_MODEL.terms.forEach((t) => {
      const w = model.weights[FEATURES.indexOf(t.feature)];
      if (Math.abs(t.weight) >= 0.5) expect(Math.sign(w)).toBe(Math.sign(t.weight));
    });
  });

  it('rejects sizes, site counts, seeds and α it cannot honour', () => {
    expect(() => generateCohort({ patients: 0, sites: 1, seed: 1 })).toThrow(RangeError);
    expect(() => generateCohort({ patients: 2.5, sites: 1, seed: 1 })).toThrow(RangeError);
    expect(() => generateCohort({ patients: 2, sites: 3, seed: 1 })).toThrow(RangeError);
    expect(() => generateCohort({ patients: 2, sites: 1, seed: -1 })).toThrow(RangeError);
    expect(() => generateCohort({ patients: 2, sites: 1, seed: 1, alpha: 0 })).toThrow(RangeError);
  });
});

describe('the cohort as FHIR R4', () => {
  const cohort = generateCohort({ patients: 40, sites: 3, seed: 42 });

  it('produces only resources that pass FHIR R4 validation for their patient', () => {
    const types = new Set<string>();
    for (const p of cohort.patients) {
      for (const resource of toFhir(p, PATIENT_ID)) {
        expect(() => validatePatientResource(resource, PATIENT_ID)).not.toThrow();
        types.add(resource.resourceType);
      }
    }
    expect([...types].sort()).toEqual(['Condition', 'Observation', 'Patient']);
  });

  it('gives a patient a birth date and no name', () => {
    const [patient] = toFhir(cohort.patients[0], PATIENT_ID);
    expect(patient).toMatchObject({
      resourceType: 'Patient',
      id: PATIENT_ID,
      birthDate: cohort.patients[0].birthDate,
    });
    expect(patient).not.toHaveProperty('name');
  });

  it('records the five measurements as final Observations by LOINC with UCUM units', () => {
    const p = cohort.patients[0];
    const observations = toFhir(p, PATIENT_ID).filter((r) => r.resourceType === 'Observation');
    expect(
      observations.map((o) => (o.code as { coding: { code: string }[] }).coding[0].code),
    ).toEqual(['2345-7', '4548-4', '39156-5', '8480-6', '2085-9']);
    observations.forEach((o, i) => {
      const spec = OBSERVATIONS[i];
      expect(o).toMatchObject({
        status: 'final',
        subject: { reference: `Patient/${PATIENT_ID}` },
        effectiveDateTime: p.effectiveDateTime,
        category: [{ coding: [{ code: spec.category }] }],
        valueQuantity: {
          value: p.features[spec.feature],
          unit: spec.unit,
          system: 'http://unitsofmeasure.org',
          code: spec.unit,
        },
      });
    });
    expect(OBSERVATIONS.map((o) => o.unit)).toEqual(['mg/dL', '%', 'kg/m2', 'mm[Hg]', 'mg/dL']);
  });

  it('adds an active, confirmed type 2 diabetes Condition for positives only', () => {
    const positive = cohort.patients.find((p) => p.label === 1)!;
    const negative = cohort.patients.find((p) => p.label === 0)!;
    expect(toFhir(negative, PATIENT_ID).map((r) => r.resourceType)).not.toContain('Condition');
    const condition = toFhir(positive, PATIENT_ID).find((r) => r.resourceType === 'Condition');
    expect(condition).toMatchObject({
      clinicalStatus: { coding: [{ code: 'active' }] },
      verificationStatus: { coding: [{ code: 'confirmed' }] },
      category: [{ coding: [{ code: 'problem-list-item' }] }],
      code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] },
      subject: { reference: `Patient/${PATIENT_ID}` },
    });
  });
});
