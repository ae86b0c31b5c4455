// A synthetic diabetes cohort for tests, demos and federated-learning benchmarks: metabolic
// features with plausible correlations, a type 2 diabetes label drawn from a published
// logistic model of those features (so the signal is known and learnable), a non-IID split
// across sites, and the FHIR R4 resources that carry it. Pure and seeded: no clock, no I/O.
import type { FhirResource } from '../../records/fhir';
import { dirichletLabelPartition } from './partition';
import { Sampler } from './random';

export type FeatureName = 'age' | 'bmi' | 'systolic' | 'glucose' | 'hba1c' | 'hdl';
export type SyntheticFeatures = Record<FeatureName, number>;

export interface SyntheticPatient {
  /** Position in the cohort (0-based); with the seed, it names the patient. */
  index: number;
  /** The site (0-based) the partition dealt this patient to. */
  site: number;
  /** YYYY-MM-DD. */
  birthDate: string;
  /** When all five observations were taken (one visit), ISO 8601 UTC. */
  effectiveDateTime: string;
  /** As recorded in the FHIR resources (rounded to their units' precision); age in years at the visit. */
  features: SyntheticFeatures;
  /** P(type 2 diabetes) under RISK_MODEL, from the recorded features. */
  risk: number;
  /** 1 when the patient has type 2 diabetes (a Condition is recorded). */
  label: 0 | 1;
}

export interface CohortOptions {
  patients: number;
  sites: number;
  seed: number;
  /** Dirichlet concentration of the label split; smaller is more skewed. */
  alpha?: number;
}

export interface SyntheticCohort {
  seed: number;
  alpha: number;
  sites: number;
  patients: SyntheticPatient[];
}

export const DEFAULT_ALPHA = 0.5;
export const MAX_PATIENTS = 1_000_000;
export const MAX_SITES = 1_000;

/** Visits fall in the two years before this instant, so the data never depends on "now". */
export const COHORT_EPOCH = Date.UTC(2025, 0, 1);
const VISIT_WINDOW_DAYS = 730;
const DAY_MS = 86_400_000;
const YEAR_DAYS = 365.25;

/** The measurements as FHIR Observations: LOINC code, UCUM unit and category. */
export const OBSERVATIONS = [
  // 2345-7 is glucose by mass concentration, so mg/dL (mmol/L would be LOINC 14749-6).
  {
    feature: 'glucose',
    loinc: '2345-7',
    display: 'Glucose [Mass/volume] in Serum or Plasma',
    unit: 'mg/dL',
    category: 'laboratory',
  },
  {
    feature: 'hba1c',
    loinc: '4548-4',
    display: 'Hemoglobin A1c/Hemoglobin.total in Blood',
    unit: '%',
    category: 'laboratory',
  },
  {
    feature: 'bmi',
    loinc: '39156-5',
    display: 'Body mass index (BMI) [Ratio]',
    unit: 'kg/m2',
    category: 'vital-signs',
  },
  {
    feature: 'systolic',
    loinc: '8480-6',
    display: 'Systolic blood pressure',
    unit: 'mm[Hg]',
    category: 'vital-signs',
  },
  {
    feature: 'hdl',
    loinc: '2085-9',
    display: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma',
    unit: 'mg/dL',
    category: 'laboratory',
  },
] as const satisfies readonly {
  feature: Exclude<FeatureName, 'age'>;
  loinc: string;
  display: string;
  unit: string;
  category: 'laboratory' | 'vital-signs';
}[];

export const TYPE_2_DIABETES = { system: 'http://snomed.info/sct', code: '44054006' } as const;

export interface RiskTerm {
  feature: FeatureName;
  /** Where a learner finds the value: an Observation's LOINC code, or the Patient's birth date. */
  source: string;
  /** The feature enters the model standardised: (value − centre) / scale. */
  centre: number;
  scale: number;
  /** Log-odds per standard deviation. */
  weight: number;
}

/**
 * The known model the labels are drawn from:
 * P(diabetes) = σ(intercept + Σ weight · (value − centre) / scale), on the recorded values.
 * Glucose and HbA1c are the strong signals, BMI and age moderate, systolic pressure weak, and
 * HDL protective. Centres and scales are the cohort's approximate means and SDs, so weights
 * compare directly. The intercept puts prevalence near 28% (the spec checks 20–35%), and the
 * model's own AUC is about 0.90 (both measured over 50 000 patients), so a logistic
 * regression on these features has a clear ceiling to approach.
 */
export const RISK_MODEL: { intercept: number; terms: readonly RiskTerm[] } = {
  intercept: -1.7,
  terms: [
    { feature: 'glucose', source: 'LOINC 2345-7', centre: 100, scale: 20, weight: 1.0 },
    { feature: 'hba1c', source: 'LOINC 4548-4', centre: 5.7, scale: 0.75, weight: 1.0 },
    { feature: 'bmi', source: 'LOINC 39156-5', centre: 28, scale: 5.5, weight: 0.6 },
    { feature: 'age', source: 'Patient.birthDate', centre: 50, scale: 15, weight: 0.5 },
    { feature: 'systolic', source: 'LOINC 8480-6', centre: 124, scale: 16, weight: 0.2 },
    { feature: 'hdl', source: 'LOINC 2085-9', centre: 52, scale: 14, weight: -0.5 },
  ],
};

/** The model's log-odds of type 2 diabetes for recorded features. */
export function riskLogit(f: SyntheticFeatures): number {
  return RISK_MODEL.terms.reduce(
    (sum, t) => sum + (t.weight * (f[t.feature] - t.centre)) / t.scale,
    RISK_MODEL.intercept,
  );
}

export function riskProbability(f: SyntheticFeatures): number {
  return 1 / (1 + Math.exp(-riskLogit(f)));
}

/** Age in years (fractional) on `at`, as a learner should derive it from the Patient. */
export function ageInYears(birthDate: string, at: string): number {
  return (Date.parse(at) - Date.parse(`${birthDate}T00:00:00Z`)) / DAY_MS / YEAR_DAYS;
}

// Distinct streams of one seed: patient i's features never depend on the cohort's size, the
// number of sites or α, and the split never reuses the features' random numbers.
const PATIENT_STREAM = 0x70617469; // "pati"
const PARTITION_STREAM = 0x73697465; // "site"

export function generateCohort(options: CohortOptions): SyntheticCohort {
  const { patients, sites, seed } = options;
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  checkOptions(patients, sites, seed, alpha);
  const drawn = Array.from({ length: patients }, (_, i) =>
    drawPatient(Sampler.stream(seed, PATIENT_STREAM, i), i),
  );
  const siteOf = dirichletLabelPartition(
    drawn.map((p) => p.label),
    sites,
    alpha,
    Sampler.stream(seed, PARTITION_STREAM),
  );
  return { seed, alpha, sites, patients: drawn.map((p, i) => ({ ...p, site: siteOf[i] })) };
}

function checkOptions(patients: number, sites: number, seed: number, alpha: number): void {
  if (!Number.isInteger(patients) || patients < 1 || patients > MAX_PATIENTS) {
    throw new RangeError(`patients must be a whole number from 1 to ${MAX_PATIENTS}`);
  }
  if (!Number.isInteger(sites) || sites < 1 || sites > Math.min(patients, MAX_SITES)) {
    throw new RangeError(
      `sites must be a whole number from 1 to the number of patients (at most ${MAX_SITES})`,
    );
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError('seed must be a whole number from 0 to 4294967295');
  }
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new RangeError('alpha must be a positive number');
  }
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round = (x: number, decimals: number) => {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
};

/**
 * One patient, from a fixed number of draws. A latent metabolic factor m ties BMI, glucose
 * and HbA1c together (and lowers HDL); age raises glucose, HbA1c and systolic pressure, as
 * does BMI for the latter. Glucose and HbA1c are log-normal for their clinical right skew.
 * Clamping to physiological ranges touches well under 1% of values.
 */
function drawPatient(s: Sampler, index: number): Omit<SyntheticPatient, 'site'> {
  const [a, m, eBmi, eGlucose, eHba1c, eHdl, eSystolic] = Array.from({ length: 7 }, () =>
    s.normal(),
  );
  const bmiZ = 0.6 * m + 0.8 * eBmi;
  const glucoseZ = 0.65 * m + 0.2 * a + 0.733 * eGlucose;
  const hba1cZ = 0.7 * m + 0.2 * a + 0.686 * eHba1c;
  const hdlZ = -0.45 * m + 0.893 * eHdl;
  const systolicZ = 0.45 * a + 0.3 * bmiZ + 0.841 * eSystolic;

  const visit =
    COHORT_EPOCH - s.int(1, VISIT_WINDOW_DAYS) * DAY_MS + s.int(7 * 60, 17 * 60) * 60_000;
  const drawnAge = clamp(50 + 15 * a, 18, 90);
  const birth = new Date(Math.floor(visit / DAY_MS - drawnAge * YEAR_DAYS) * DAY_MS).toISOString();
  const birthDate = birth.slice(0, 10);
  const effectiveDateTime = new Date(visit).toISOString().replace('.000Z', 'Z');

  const features: SyntheticFeatures = {
    age: ageInYears(birthDate, effectiveDateTime),
    bmi: round(clamp(28 + 5.5 * bmiZ, 15, 60), 1),
    systolic: round(clamp(124 + 16 * systolicZ, 85, 220), 0),
    glucose: round(clamp(98 * Math.exp(0.2 * glucoseZ), 55, 400), 0),
    hba1c: round(clamp(5.65 * Math.exp(0.13 * hba1cZ), 4, 15), 1),
    hdl: round(clamp(52 + 14 * hdlZ, 20, 110), 0),
  };
  const risk = riskProbability(features);
  const label = s.uniform() < risk ? 1 : 0;
  return { index, birthDate, effectiveDateTime, features, risk, label };
}

const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const CONDITION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
const UCUM = 'http://unitsofmeasure.org';
/** HL7's "test health data" purpose: marks every resource as synthetic. */
const SYNTHETIC_TAG = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  code: 'HTEST',
  display: 'test health data',
};

/**
 * The FHIR R4 resources of one patient, in the order to store them: the Patient (birth date
 * only: synthetic and pseudonymous, no names), the five Observations of the visit, and for a
 * positive label the type 2 diabetes Condition.
 */
export function toFhir(patient: SyntheticPatient, patientId: string): FhirResource[] {
  const subject = { reference: `Patient/${patientId}` };
  const meta = { tag: [SYNTHETIC_TAG] };
  const resources: FhirResource[] = [
    { resourceType: 'Patient', id: patientId, meta, active: true, birthDate: patient.birthDate },
  ];
  for (const o of OBSERVATIONS) {
    resources.push({
      resourceType: 'Observation',
      meta,
      status: 'final',
      category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: o.category }] }],
      code: { coding: [{ system: 'http://loinc.org', code: o.loinc, display: o.display }] },
      subject,
      effectiveDateTime: patient.effectiveDateTime,
      valueQuantity: {
        value: patient.features[o.feature],
        unit: o.unit,
        system: UCUM,
        code: o.unit,
      },
    });
  }
  if (patient.label === 1) {
    resources.push({
      resourceType: 'Condition',
      meta,
      clinicalStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
            code: 'active',
          },
        ],
      },
      verificationStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status',
            code: 'confirmed',
          },
        ],
      },
      category: [{ coding: [{ system: CONDITION_CATEGORY, code: 'problem-list-item' }] }],
      code: { coding: [{ ...TYPE_2_DIABETES, display: 'Diabetes mellitus type 2' }] },
      subject,
      recordedDate: patient.effectiveDateTime,
    });
  }
  return resources;
}
