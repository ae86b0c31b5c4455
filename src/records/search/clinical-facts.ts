// What a search reads from a FHIR resource: its main code (the element a clinician means by
// "which test, which diagnosis, which drug") and its clinical date. Pure functions: the write
// path indexes them, the read path checks each row found against them again, so the index
// (which a database writer could alter) decides nothing on its own.
import { BadUserInputError } from '../../common/errors';
import { fhirTime } from '../../common/instants';

type Json = Record<string, unknown>;

/** The element holding each type's main code (a CodeableConcept, or an array of them). */
const MAIN_CODE: Readonly<Record<string, string>> = {
  AdverseEvent: 'event',
  AllergyIntolerance: 'code',
  Appointment: 'serviceType',
  Claim: 'type',
  Communication: 'category',
  CommunicationRequest: 'category',
  Composition: 'type',
  Condition: 'code',
  Coverage: 'type',
  Device: 'type',
  DeviceRequest: 'codeCodeableConcept',
  DiagnosticReport: 'code',
  DocumentReference: 'type',
  Encounter: 'type',
  EpisodeOfCare: 'type',
  ExplanationOfBenefit: 'type',
  FamilyMemberHistory: 'relationship',
  Goal: 'description',
  ImagingStudy: 'procedureCode',
  Immunization: 'vaccineCode',
  MedicationAdministration: 'medicationCodeableConcept',
  MedicationDispense: 'medicationCodeableConcept',
  MedicationRequest: 'medicationCodeableConcept',
  MedicationStatement: 'medicationCodeableConcept',
  Observation: 'code',
  Procedure: 'code',
  ServiceRequest: 'code',
  Specimen: 'type',
  SupplyRequest: 'itemCodeableConcept',
};

/**
 * Each type's clinical date, in order of preference: a choice element's `[x]` stands for its
 * dateTime/instant/Period/date forms (a Period counts from its start), and a dotted path reads
 * inside an element (Specimen's collection). The first present wins; a type not listed has
 * its effective[x], if any. These are the elements FHIR R4's `date` search parameter (or the
 * type's own date parameter) reads, for every type that holds a patient's data.
 */
const CLINICAL_DATE: Readonly<Record<string, readonly string[]>> = {
  AdverseEvent: ['date', 'detected', 'recordedDate'],
  AllergyIntolerance: ['onset[x]', 'recordedDate'],
  Appointment: ['start', 'created'],
  AppointmentResponse: ['start'],
  Basic: ['created'],
  CarePlan: ['period', 'created'],
  CareTeam: ['period'],
  Claim: ['billablePeriod', 'created'],
  ClaimResponse: ['created'],
  ClinicalImpression: ['effective[x]', 'date'],
  Communication: ['sent', 'received'],
  CommunicationRequest: ['occurrence[x]', 'authoredOn'],
  Composition: ['date'],
  Condition: ['onset[x]', 'recordedDate'],
  Consent: ['dateTime'],
  Coverage: ['period'],
  CoverageEligibilityRequest: ['serviced[x]', 'created'],
  CoverageEligibilityResponse: ['serviced[x]', 'created'],
  DetectedIssue: ['identified[x]'],
  DeviceRequest: ['occurrence[x]', 'authoredOn'],
  DeviceUseStatement: ['timing[x]', 'recordedOn'],
  DiagnosticReport: ['effective[x]', 'issued'],
  DocumentReference: ['date'],
  Encounter: ['period'],
  EnrollmentRequest: ['created'],
  EpisodeOfCare: ['period'],
  ExplanationOfBenefit: ['billablePeriod', 'created'],
  FamilyMemberHistory: ['date'],
  Flag: ['period'],
  Goal: ['start[x]'],
  GuidanceResponse: ['occurrenceDateTime'],
  ImagingStudy: ['started'],
  Immunization: ['occurrence[x]', 'recorded'],
  ImmunizationEvaluation: ['date'],
  ImmunizationRecommendation: ['date'],
  Invoice: ['date'],
  List: ['date'],
  Media: ['created[x]', 'issued'],
  MedicationAdministration: ['effective[x]'],
  MedicationDispense: ['whenHandedOver', 'whenPrepared'],
  MedicationRequest: ['authoredOn'],
  MedicationStatement: ['effective[x]', 'dateAsserted'],
  NutritionOrder: ['dateTime'],
  Observation: ['effective[x]', 'issued'],
  Procedure: ['performed[x]'],
  QuestionnaireResponse: ['authored'],
  RequestGroup: ['authoredOn'],
  ResearchSubject: ['period'],
  RiskAssessment: ['occurrence[x]'],
  ServiceRequest: ['occurrence[x]', 'authoredOn'],
  Specimen: ['collection.collected[x]', 'receivedTime'],
  SupplyDelivery: ['occurrence[x]'],
  SupplyRequest: ['occurrence[x]', 'authoredOn'],
  Task: ['executionPeriod', 'authoredOn'],
  VisionPrescription: ['dateWritten'],
};

const CHOICE_FORMS = ['DateTime', 'Instant', 'Period', 'Date', 'Timing'];

export interface Coding {
  system: string | null;
  code: string;
}

/** The codings of the resource's main code (every coding of every concept), possibly none. */
export function mainCodings(resource: Json): Coding[] {
  const element = MAIN_CODE[resource.resourceType as string] ?? 'code';
  const raw = resource[element];
  const concepts = Array.isArray(raw) ? raw : raw ? [raw] : [];
  const out: Coding[] = [];
  for (const concept of concepts as { coding?: unknown }[]) {
    if (!concept || !Array.isArray(concept.coding)) continue;
    for (const c of concept.coding as { system?: unknown; code?: unknown }[]) {
      if (typeof c?.code !== 'string' || c.code === '') continue;
      out.push({ system: typeof c.system === 'string' ? c.system : null, code: c.code });
    }
  }
  return out;
}

/** The resource's clinical date, or null when it has none (the caller falls back). */
export function clinicalDate(resource: Json): Date | null {
  const paths = CLINICAL_DATE[resource.resourceType as string] ?? ['effective[x]'];
  for (const path of paths) {
    for (const value of valuesAt(resource, path)) {
      const date = instantOf(value);
      if (date) return date;
    }
  }
  return null;
}

/** The values a path (`a.b`, its last step possibly a choice `b[x]`) names in a resource. */
function valuesAt(resource: Json, path: string): unknown[] {
  const steps = path.split('.');
  const last = steps.pop()!;
  let at: unknown = resource;
  for (const step of steps) {
    at = at && typeof at === 'object' && !Array.isArray(at) ? (at as Json)[step] : undefined;
  }
  if (!at || typeof at !== 'object' || Array.isArray(at)) return [];
  const element = at as Json;
  return last.endsWith('[x]')
    ? CHOICE_FORMS.map((form) => element[last.slice(0, -3) + form])
    : [element[last]];
}

/**
 * A FHIR date, dateTime or instant (partial dates count from their start); a Period's start,
 * or its end when it has none (an observation "until 2016-01-01" is dated then, not when it
 * was stored); a Timing's earliest event.
 */
function instantOf(value: unknown): Date | null {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const { start, end, event } = value as { start?: unknown; end?: unknown; event?: unknown };
    if (Array.isArray(event)) return earliest(event);
    return instantOf(start) ?? instantOf(end);
  }
  if (typeof value !== 'string') return null;
  // Partial dates are their first moment, UTC; a leap second the one after 23:59:59.
  const ms = fhirTime(value);
  if (!Number.isFinite(ms)) return null;
  // FHIR's years 0001–9999 with an offset can fall outside them in UTC ("9999-12-31T23:00:00
  // -05:00" is in 10000), which RFC 3339 cannot write: the nearest instant it can.
  return new Date(Math.min(Math.max(ms, FIRST_INSTANT), LAST_INSTANT));
}

/** The first and last instants RFC 3339 (and a DateTime) can write, in UTC. */
const FIRST_INSTANT = Date.parse('0001-01-01T00:00:00.000Z');
const LAST_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');

function earliest(values: unknown[]): Date | null {
  let first: Date | null = null;
  for (const v of values) {
    const at = typeof v === 'string' ? instantOf(v) : null;
    if (at && (!first || at < first)) first = at;
  }
  return first;
}

/**
 * The index terms of a resource's main code: per coding, `sc:system|code`, `c:code` and
 * `s:system`, and `ns:code` for a coding without a system, so that each form of a FHIR token
 * is one lookup.
 */
export function codeTerms(resource: Json): string[] {
  return termsOf(mainCodings(resource));
}

function termsOf(codings: readonly Coding[]): string[] {
  const terms = new Set<string>();
  for (const { system, code } of codings) {
    terms.add(`c:${code}`);
    if (system === null) terms.add(`ns:${code}`);
    else terms.add(`sc:${system}|${code}`).add(`s:${system}`);
  }
  return [...terms].sort();
}

/**
 * The codings of an Observation's components (a blood pressure panel's systolic and
 * diastolic), as FHIR's `combo-code` reads them with the main code; none for other types.
 */
export function componentCodings(resource: Json): Coding[] {
  if (resource.resourceType !== 'Observation' || !Array.isArray(resource.component)) return [];
  return (resource.component as unknown[]).flatMap((c) =>
    c && typeof c === 'object' ? mainCodings({ resourceType: 'Observation', ...(c as Json) }) : [],
  );
}

/** A term of a component's code: a different string from the same term of a main code. */
export function componentTerm(term: string): string {
  return `component/${term}`;
}

/** Every index term of a resource: its main code's and its components' (componentTerm). */
export function indexTerms(resource: Json): string[] {
  return [...codeTerms(resource), ...termsOf(componentCodings(resource)).map(componentTerm)];
}

const MAX_TOKEN = 512;

/**
 * The index term a FHIR token asks for: `system|code` (that system), `|code` (no system),
 * `system|` (any code of that system) or `code` (any system), with FHIR's escapes (`\|`,
 * `\,`, `\$`, `\\`) for those characters inside a system or code. An unescaped comma is
 * FHIR's OR, which one token here does not take (it would match nothing, silently): refused.
 * Anything else is BAD_USER_INPUT naming `field`.
 */
export function tokenTerm(token: string, field: string): string {
  const bad = (why = '') =>
    new BadUserInputError(
      `${field} must be a FHIR token: "system|code", "|code", "system|" or "code" (at most ${MAX_TOKEN} characters)${why}`,
      field,
    );
  // eslint-disable-next-line no-control-regex
  if (token.length === 0 || token.length > MAX_TOKEN || /[\u0000-\u001f]/.test(token)) throw bad();
  // Split on the bars and commas that are not escaped, unescaping the rest.
  const parts: string[] = [''];
  for (let i = 0; i < token.length; i++) {
    const ch = token[i];
    if (ch === '\\') {
      const next = token[i + 1];
      if (next === undefined || !'|,$\\'.includes(next)) throw bad();
      parts[parts.length - 1] += next;
      i++;
    } else if (ch === ',') {
      throw bad(
        "; a comma is FHIR's OR, which is not taken: search one code at a time (a comma inside a code is written \\,)",
      );
    } else if (ch === '|') {
      parts.push('');
    } else {
      parts[parts.length - 1] += ch;
    }
  }
  if (parts.length === 1) return `c:${parts[0]}`;
  const [system, code] = parts;
  if (parts.length > 2 || (code === '' && system === '')) throw bad();
  if (code === '') return `s:${system}`;
  return system === '' ? `ns:${code}` : `sc:${system}|${code}`;
}

/** Whether the resource's main code carries the term (the check of each row found). */
export function hasTerm(resource: Json, term: string): boolean {
  return codeTerms(resource).includes(term);
}

/** Whether the resource's main code or one of its components' carries the term. */
export function hasComboTerm(resource: Json, term: string): boolean {
  return hasTerm(resource, term) || termsOf(componentCodings(resource)).includes(term);
}
