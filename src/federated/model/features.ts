// From one patient's FHIR resources to a training example: the study's features, standardised
// on fixed clinical reference scales, and its label. Pure: no TF.js, no clock, no I/O.
//
// Standardisation uses the same fixed centre and scale at every node rather than each node's
// own means and SDs: nodes then feed the shared model comparable inputs without sharing
// statistics of their data, and a node with a skewed population (the non-IID case) does not
// shift the meaning of a weight.
//
// A patient missing any of the study's features is skipped (complete-case analysis), and the
// skip is counted by feature. Imputing would need a population value each node would have to
// agree on, and would hide from the node how much of its data the study can actually use.
import type { FhirResource } from '../../records/fhir';
import { fhirTime } from '../../common/instants';

/** LOINC 30525-0 "Age": derived from Patient.birthDate, not from an Observation. */
export const AGE_LOINC = '30525-0';

export interface FeatureScale {
  display: string;
  /** UCUM code an Observation's valueQuantity must carry; other units are not converted. */
  unit: string;
  /** The feature enters the model as (value − centre) / scale. */
  centre: number;
  scale: number;
  /** Where centre and scale come from. */
  basis: string;
}

/**
 * The features a study can use, by LOINC code. Centres sit at clinical decision thresholds
 * and scales span a clinically meaningful step, so a standardised value reads as "steps
 * above the threshold" and stays within a few units for almost every adult.
 */
export const FEATURE_SCALES: Readonly<Record<string, FeatureScale>> = {
  '2345-7': {
    display: 'Glucose [Mass/volume] in Serum or Plasma',
    unit: 'mg/dL',
    centre: 100,
    scale: 25,
    basis: 'ADA: fasting 100 mg/dL ends the normal range; 126 mg/dL is diabetes',
  },
  '4548-4': {
    display: 'Hemoglobin A1c/Hemoglobin.total in Blood',
    unit: '%',
    centre: 5.7,
    scale: 0.8,
    basis: 'ADA: 5.7% starts prediabetes, 6.5% is diabetes',
  },
  '39156-5': {
    display: 'Body mass index (BMI) [Ratio]',
    unit: 'kg/m2',
    centre: 25,
    scale: 5,
    basis: 'WHO: 25 kg/m2 starts overweight; classes are 5 kg/m2 wide',
  },
  '8480-6': {
    display: 'Systolic blood pressure',
    unit: 'mm[Hg]',
    centre: 120,
    scale: 20,
    basis: 'ACC/AHA 2017: 120 mm Hg ends normal; each 20 mm Hg about doubles vascular risk',
  },
  '2085-9': {
    display: 'Cholesterol in HDL [Mass/volume] in Serum or Plasma',
    unit: 'mg/dL',
    centre: 50,
    scale: 15,
    basis: 'NCEP ATP III: below 40 (men) or 50 mg/dL (women) is low HDL',
  },
  [AGE_LOINC]: {
    display: 'Age',
    unit: 'a',
    centre: 50,
    scale: 15,
    basis: 'the middle of the adult age range, in 15-year steps',
  },
};

export const SUPPORTED_FEATURES: readonly string[] = Object.keys(FEATURE_SCALES);

/**
 * The values a living patient can have, generously bounded (well past the extremes reported
 * in the literature): a recorded value outside them is a unit or entry error, and is passed
 * over as unusable rather than fed to training or a risk assessment (a glucose of 10⁹ mg/dL
 * made a certain diagnosis).
 */
export const PLAUSIBLE: Readonly<Record<string, readonly [number, number]>> = {
  '2345-7': [5, 3000],
  '4548-4': [2, 25],
  '39156-5': [5, 250],
  '8480-6': [20, 350],
  '2085-9': [1, 400],
};

/** What a study asks of each patient. */
export interface ExampleDefinition {
  /** Ordered LOINC codes, each one of SUPPORTED_FEATURES. */
  features: readonly string[];
  /** SNOMED CT code of the Condition to predict. */
  label: string;
  /**
   * The instant the example describes (ISO 8601): Observations after it are ignored and age
   * is computed at it, so that an example does not change as time passes.
   */
  asOf: string;
}

export type PatientExample =
  { included: true; x: number[]; y: 0 | 1 } | { included: false; missing: string[] };

export interface ExampleSet {
  x: number[][];
  y: (0 | 1)[];
  /** Patients left out, and how many lacked each feature (a patient may lack several). */
  skipped: number;
  missing: Record<string, number>;
}

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
/** Results that stand; registered and preliminary ones may still change. */
const RESULT_STATUSES = new Set(['final', 'amended', 'corrected']);
/** 'recurrence' and 'relapse' are kinds of 'active' in the clinical-status code system. */
const ACTIVE_STATUSES = new Set(['active', 'recurrence', 'relapse']);
const VOID_VERIFICATIONS = new Set(['refuted', 'entered-in-error']);
const DAY_MS = 86_400_000;
const YEAR_DAYS = 365.25;

/** Own keys only: 'constructor' is not a LOINC code. */
function scaleOf(code: string): FeatureScale | undefined {
  return Object.hasOwn(FEATURE_SCALES, code) ? FEATURE_SCALES[code] : undefined;
}

/** Throws when the definition cannot be honoured, before any patient is read. */
export function checkExampleDefinition(definition: ExampleDefinition): void {
  const { features, label, asOf } = definition;
  if (features.length === 0) throw new RangeError('a study needs at least one feature');
  const unknown = features.filter((f) => !scaleOf(f));
  if (unknown.length > 0) {
    throw new RangeError(
      `no reference scale for feature ${unknown.join(', ')}; supported: ${SUPPORTED_FEATURES.join(', ')}`,
    );
  }
  if (new Set(features).size !== features.length) throw new RangeError('features must not repeat');
  if (!/^\d{6,18}$/.test(label))
    throw new RangeError(`label must be a SNOMED CT code, got ${label}`);
  if (Number.isNaN(Date.parse(asOf)))
    throw new RangeError(`asOf must be an ISO 8601 date-time, got ${asOf}`);
}

/** (value − centre) / scale for the feature's reference scale. */
export function standardise(code: string, value: number): number {
  const reference = scaleOf(code);
  if (!reference) throw new RangeError(`no reference scale for feature ${code}`);
  return (value - reference.centre) / reference.scale;
}

/**
 * One patient's example from all their resources: for each feature the latest usable value
 * at `asOf`, standardised, and the label 1 when they have an active, not refuted Condition
 * with the study's SNOMED CT code. The label is the Condition's status as recorded now: FHIR
 * keeps no history of a clinical status to read it as of `asOf`.
 */
export function buildExample(
  resources: readonly FhirResource[],
  definition: ExampleDefinition,
): PatientExample {
  checkExampleDefinition(definition);
  return exampleOf(resources, definition);
}

/** Examples for many patients (one resource list each), skipping those with a feature missing. */
export function buildExamples(
  patients: Iterable<readonly FhirResource[]>,
  definition: ExampleDefinition,
): ExampleSet {
  checkExampleDefinition(definition);
  const set: ExampleSet = { x: [], y: [], skipped: 0, missing: {} };
  for (const resources of patients) {
    const example = exampleOf(resources, definition);
    if (example.included) {
      set.x.push(example.x);
      set.y.push(example.y);
    } else {
      set.skipped++;
      for (const code of example.missing) set.missing[code] = (set.missing[code] ?? 0) + 1;
    }
  }
  return set;
}

function exampleOf(
  resources: readonly FhirResource[],
  definition: ExampleDefinition,
): PatientExample {
  const asOf = Date.parse(definition.asOf);
  const latest = latestValues(resources, asOf, referenceUnit);
  const x: number[] = [];
  const missing: string[] = [];
  for (const code of definition.features) {
    const value = code === AGE_LOINC ? ageAt(resources, asOf)?.value : latest.get(code)?.value;
    if (value === undefined) missing.push(code);
    else x.push(standardise(code, value));
  }
  if (missing.length > 0) return { included: false, missing };
  return { included: true, x, y: hasCondition(resources, definition.label) ? 1 : 0 };
}

/** One feature's raw value and the index of the resource it was read from. */
export interface FeatureValue {
  code: string;
  value: number;
  unit: string;
  source: number;
}

/**
 * The raw (unstandardised) value of each feature for one patient, as training reads them: the
 * latest usable Observation at or before `asOf` in the unit `units` names for its code (age
 * from the Patient's birth date), with the index in `resources` each came from. For using a
 * trained model on one patient, whose metadata names the units.
 */
export function featureValues(
  resources: readonly FhirResource[],
  features: readonly string[],
  asOf: string,
  units: Readonly<Record<string, string>>,
): { values: FeatureValue[]; missing: string[] } {
  const at = Date.parse(asOf);
  if (Number.isNaN(at)) throw new RangeError(`asOf must be an ISO 8601 date-time, got ${asOf}`);
  const unitOfCode = (code: string) => (Object.hasOwn(units, code) ? units[code] : undefined);
  const latest = latestValues(resources, at, unitOfCode);
  const values: FeatureValue[] = [];
  const missing: string[] = [];
  for (const code of features) {
    const found = code === AGE_LOINC ? ageAt(resources, at) : latest.get(code);
    const unit = unitOfCode(code);
    if (found === undefined || unit === undefined) missing.push(code);
    else values.push({ code, value: found.value, unit, source: found.source });
  }
  return { values, missing };
}

function referenceUnit(code: string): string | undefined {
  return scaleOf(code)?.unit;
}

/**
 * Per LOINC code, the value of the latest usable Observation taken at or before `asOf`, in
 * the unit `unitFor` names for the code, and the index of that Observation in `resources`.
 */
function latestValues(
  resources: readonly FhirResource[],
  asOf: number,
  unitFor: (code: string) => string | undefined,
): Map<string, { value: number; source: number }> {
  const latest = new Map<string, { at: number; value: number; source: number }>();
  for (const [index, r] of resources.entries()) {
    if (r.resourceType !== 'Observation' || !RESULT_STATUSES.has(r.status as string)) continue;
    const at = effectiveTime(r);
    if (at === undefined || at > asOf) continue;
    const quantity = r.valueQuantity as
      { value?: unknown; code?: unknown; system?: unknown; unit?: unknown } | undefined;
    if (typeof quantity?.value !== 'number' || !Number.isFinite(quantity.value)) continue;
    const value = quantity.value;
    for (const code of codesOf(r.code, LOINC)) {
      const unit = unitFor(code);
      if (unit === undefined || code === AGE_LOINC || unitOf(quantity) !== unit) continue;
      const range = Object.hasOwn(PLAUSIBLE, code) ? PLAUSIBLE[code] : undefined;
      if (range && !(value >= range[0] && value <= range[1])) continue;
      const seen = latest.get(code);
      // On equal times the later resource in the list wins, so the choice is deterministic.
      if (!seen || at >= seen.at) latest.set(code, { at, value, source: index });
    }
  }
  return new Map([...latest].map(([code, { value, source }]) => [code, { value, source }]));
}

/** When the observation applies: its effective time (a period's end), else when it was issued. */
function effectiveTime(observation: FhirResource): number | undefined {
  const period = observation.effectivePeriod as { start?: string; end?: string } | undefined;
  const when =
    (observation.effectiveDateTime as string | undefined) ??
    (observation.effectiveInstant as string | undefined) ??
    period?.end ??
    period?.start ??
    (observation.issued as string | undefined);
  if (typeof when !== 'string') return undefined;
  const at = fhirTime(when);
  return Number.isNaN(at) ? undefined : at;
}

/** The quantity's UCUM code; without a code, its unit text when that is the UCUM form. */
function unitOf(quantity: {
  code?: unknown;
  system?: unknown;
  unit?: unknown;
}): string | undefined {
  if (typeof quantity.code === 'string') {
    return quantity.system === undefined || quantity.system === UCUM ? quantity.code : undefined;
  }
  return typeof quantity.unit === 'string' ? quantity.unit : undefined;
}

/** Age in years (fractional) at `asOf` from the Patient's birth date; partial dates count from their start. */
function ageAt(
  resources: readonly FhirResource[],
  asOf: number,
): { value: number; source: number } | undefined {
  const source = resources.findIndex((r) => r.resourceType === 'Patient');
  const birthDate = source < 0 ? undefined : resources[source].birthDate;
  if (typeof birthDate !== 'string') return undefined;
  if (!/^\d{4}(?:-\d{2})?(?:-\d{2})?$/.test(birthDate)) return undefined;
  const born = fhirTime(birthDate);
  if (!Number.isFinite(born) || born > asOf) return undefined;
  // A patient who died before `asOf` is as old as at their death; one known to have died, but
  // not when, is of no age that can be told.
  const patient = resources[source];
  if (patient.deceasedBoolean === true) return undefined;
  const died =
    typeof patient.deceasedDateTime === 'string' ? fhirTime(patient.deceasedDateTime) : NaN;
  const until = Number.isFinite(died) && died < asOf ? Math.max(died, born) : asOf;
  return { value: (until - born) / DAY_MS / YEAR_DAYS, source };
}

function hasCondition(resources: readonly FhirResource[], snomed: string): boolean {
  return resources.some(
    (r) =>
      r.resourceType === 'Condition' &&
      codesOf(r.code, SNOMED).includes(snomed) &&
      codesOf(r.clinicalStatus).some((c) => ACTIVE_STATUSES.has(c)) &&
      !codesOf(r.verificationStatus).some((c) => VOID_VERIFICATIONS.has(c)),
  );
}

/** The codes of a CodeableConcept, of one code system when `system` is given. */
function codesOf(concept: unknown, system?: string): string[] {
  const coding = (concept as { coding?: unknown } | undefined)?.coding;
  if (!Array.isArray(coding)) return [];
  return coding
    .filter((c): c is { system?: unknown; code: string } => typeof c?.code === 'string')
    .filter((c) => system === undefined || c.system === system)
    .map((c) => c.code);
}
