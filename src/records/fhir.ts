// FHIR R4 validation (strict, from HL7's definitions: see ./fhir/) and the facts we derive from a
// resource: whose it is, its category and its sensitivity.
import { BadUserInputError } from '../common/errors';
import { isGrantConsent } from '../consent/fhir-consent';
import {
  type FhirIssue,
  fhirIssues,
  isR4ResourceType,
  loadFhirValidation,
  patientElement,
  unsafeFhirInput,
} from './fhir/index';

export type FhirResource = Record<string, unknown> & { resourceType: string };

/** Loads, compiles and expands the R4 definitions once per process. */
export function loadFhirDefinitions(): void {
  loadFhirValidation();
}

const FIELD = 'input.resource';

/**
 * Validates `value` as a FHIR R4 resource that a patient can own, and returns a copy whose
 * subject (or patient) reference names `patientId`. Errors name the offending path and
 * never echo values, which may be PHI.
 */
export function validatePatientResource(
  value: unknown,
  patientId: string,
  /** Where the resource is in the request, for the error's field (updateRecord: `resource`). */
  field = FIELD,
): FhirResource {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadUserInputError('resource must be a FHIR resource object', field);
  }
  // Before the copy: structuredClone would follow any depth, and keeps an own `__proto__`.
  const unsafe = unsafeFhirInput(value);
  if (unsafe) throw invalid([unsafe], field);
  const type = (value as { resourceType?: unknown }).resourceType;
  if (typeof type !== 'string' || !isR4ResourceType(type)) {
    throw new BadUserInputError(
      'resource.resourceType must name a FHIR R4 resource type (e.g. Observation, Condition)',
      `${field}.resourceType`,
    );
  }
  if (!holdsPatientData(type)) {
    throw new BadUserInputError(
      `${type} resources cannot hold a patient's data; use a type with a subject or patient reference (e.g. Observation, Condition)`,
      `${field}.resourceType`,
    );
  }
  // A grant's own Consent (ConsentGrant.fhir) stored as a record would read as a grant where it
  // is none, and an import of the patient's export would pass it over as one.
  if (isGrantConsent(value as Record<string, unknown>)) {
    throw new BadUserInputError(
      'this Consent carries a Custodia grant identifier (urn:custodia:consent-grant): grants are made with grantConsent, not stored as records',
      `${field}.identifier`,
    );
  }
  const resource = structuredClone(value) as FhirResource;
  bindOwner(resource, type === 'Patient' ? 'self' : patientElement(type)!, patientId, field);
  return validateFhirResource(resource, field);
}

/**
 * Whether records of this type can exist: a FHIR R4 type whose subject or patient may name a
 * Patient, or Patient itself. (Organization, Practitioner, Medication, … hold no one's data.)
 */
export function holdsPatientData(type: string): boolean {
  return isR4ResourceType(type) && (type === 'Patient' || patientElement(type) !== null);
}

/**
 * Validates `value` as a FHIR R4 resource of any type, with no owner: HL7's JSON schema, the
 * structure definitions' cardinalities, choice elements, required bindings and error-level
 * invariants, ele-1, and the narrative rules. Throws BAD_USER_INPUT naming paths and rules.
 */
export function validateFhirResource(value: unknown, field = FIELD): FhirResource {
  const issues = fhirIssues(value);
  if (issues.length > 0) throw invalid(issues, field);
  return value as FhirResource;
}

function invalid(issues: FhirIssue[], field = FIELD): BadUserInputError {
  const text = issues.map((i) => `${i.path}: ${i.rule}`).join('; ');
  const relative = issues[0].path.replace(/^[A-Za-z]+\.?/, '');
  return new BadUserInputError(
    `resource is not valid FHIR R4: ${text}`,
    relative ? `${field}.${relative}` : field,
  );
}

type Owner = 'self' | 'subject' | 'patient';

function bindOwner(resource: FhirResource, owner: Owner, patientId: string, field = FIELD): void {
  const expected = `Patient/${patientId}`;
  if (owner === 'self') {
    if (resource.id !== undefined && resource.id !== patientId) {
      throw new BadUserInputError(
        "a Patient resource's id must be the owner's patient id (or absent)",
        `${field}.id`,
      );
    }
    resource.id = patientId;
    return;
  }
  const ref = resource[owner];
  if (ref === undefined) {
    resource[owner] = { reference: expected };
    return;
  }
  if (
    typeof ref !== 'object' ||
    ref === null ||
    (ref as { reference?: unknown }).reference !== expected
  ) {
    throw new BadUserInputError(
      `resource.${owner}.reference must be "${expected}" (the record's owner) or be left out`,
      `${field}.${owner}`,
    );
  }
}

/**
 * Stamps what the server owns in a stored version, as a FHIR server does on create and
 * update: the resource's id is its record's (a Patient's stays its owner's, which the other
 * records' subject names), meta.versionId the version and meta.lastUpdated when it was
 * written. Any other meta (tags, security labels, profiles) is the resource's own and stays.
 */
export function stampServerFields(
  resource: FhirResource,
  recordId: string,
  version: number,
  at: Date,
): void {
  if (resource.resourceType !== 'Patient') resource.id = recordId;
  resource.meta = {
    ...((resource.meta as Record<string, unknown> | undefined) ?? {}),
    versionId: String(version),
    lastUpdated: at.toISOString(),
  };
}

/** HL7's own code systems, where the standard categories live (observation-category, …). */
const HL7_TERMINOLOGY = 'http://terminology.hl7.org/CodeSystem/';

/**
 * The record's category label (e.g. `laboratory`, `vital-signs`, `problem-list-item`): the
 * first category coded in one of HL7's own code systems, as grants name them; else the first
 * coded one of any system; for a resource whose category is a bare code (AllergyIntolerance's
 * `food`, say), that code. A record holds one: of several standard ones, the first is filed.
 */
export function deriveCategory(resource: FhirResource): string | null {
  const raw = resource.category;
  const concepts = Array.isArray(raw) ? raw : raw ? [raw] : [];
  let fallback: string | null = null;
  for (const c of concepts as unknown[]) {
    if (typeof c === 'string') {
      fallback ??= c;
      continue;
    }
    const codings = (c as { coding?: unknown } | null)?.coding;
    if (!Array.isArray(codings)) continue;
    for (const x of codings as { system?: unknown; code?: unknown }[]) {
      if (typeof x?.code !== 'string') continue;
      if (typeof x.system === 'string' && x.system.startsWith(HL7_TERMINOLOGY)) return x.code;
      fallback ??= x.code;
    }
  }
  return fallback;
}

const CATEGORY = /^[A-Za-z0-9._:/-]{1,64}$/;

/**
 * A record's category label as stored and filtered on: a code of 1–64 letters, digits or
 * . _ : / - (or none); anything else is the caller's mistake, reported at `field`.
 */
export function checkedCategory(category: string | null, field: string): string | null {
  if (category !== null && !CATEGORY.test(category)) {
    throw new BadUserInputError(
      'category must be a code of 1–64 letters, digits or . _ : / -',
      field,
    );
  }
  return category;
}

const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

/** The security label that marks a resource restricted (what labelledRestricted reads). */
export const RESTRICTED_LABEL = { system: CONFIDENTIALITY, code: 'R', display: 'restricted' };

/** RESTRICTED when meta.security carries the R (restricted) or V (very restricted) code. */
export function labelledRestricted(resource: FhirResource): boolean {
  const security = (
    resource.meta as { security?: { system?: string; code?: string }[] } | undefined
  )?.security;
  return (security ?? []).some(
    (s) =>
      (s.system === undefined || s.system === CONFIDENTIALITY) &&
      (s.code === 'R' || s.code === 'V'),
  );
}

/**
 * What the resource's own confidentiality labels (HL7 v3-Confidentiality, in meta.security)
 * say: 'restricted' for R or V, 'open' for only lower codes (U, L, M, N), null for none.
 */
export function confidentialityOf(resource: FhirResource): 'restricted' | 'open' | null {
  if (labelledRestricted(resource)) return 'restricted';
  return confidentialityLabels(resource).length ? 'open' : null;
}

/** The resource's v3-Confidentiality labels. */
function confidentialityLabels(resource: FhirResource): { code?: string }[] {
  const security = (resource.meta as { security?: unknown } | undefined)?.security;
  return (Array.isArray(security) ? security : []).filter(
    (s: { system?: unknown; code?: unknown } | null) =>
      s?.system === CONFIDENTIALITY && typeof s.code === 'string',
  );
}

/** meta.security with its confidentiality labels replaced by `label` (one, as FHIR has it). */
export function withConfidentiality(
  security: unknown,
  label: { system: string; code: string; display?: string },
): unknown[] {
  const rest = (Array.isArray(security) ? security : []).filter(
    (s: { system?: unknown } | null) => s?.system !== CONFIDENTIALITY,
  );
  return [...rest, label];
}

/** The labels of a record that its own content can contradict. */
export interface RecordLabelClaims {
  resourceType: string;
  category: string | null;
  sensitivity: 'NORMAL' | 'RESTRICTED';
}

/**
 * The first label the resource itself contradicts, or null: its type is its own; a resource
 * marked R or V is restricted; a record without a category has none to derive. (A category or
 * restriction chosen at creation cannot be checked against the content.)
 */
export function contradictedLabel(
  resource: FhirResource,
  labels: RecordLabelClaims,
): keyof RecordLabelClaims | null {
  if (resource.resourceType !== labels.resourceType) return 'resourceType';
  if (labelledRestricted(resource) && labels.sensitivity !== 'RESTRICTED') return 'sensitivity';
  if (labels.category === null && deriveCategory(resource) !== null) return 'category';
  return null;
}
