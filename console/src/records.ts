// Reading the FHIR resources the API returns, for display only.
import { ApiError, gqlPartial } from './api';
import { allPages, Paged } from './paging';

export interface HealthRecord {
  id: string;
  resourceType: string;
  category: string | null;
  sensitivity: string;
  integrity: 'VERIFIED' | 'PENDING' | 'MISMATCH';
  createdAt: string;
  /** The server's clinical date (effective, onset, occurrence, performed, …), if it found one. */
  effectiveAt: string | null;
  ledgerTxId: string | null;
  resource: Record<string, unknown>;
}

export const RECORD_FIELDS = `id resourceType category sensitivity integrity createdAt effectiveAt ledgerTxId resource`;

/** A patient's records as read, and the errors the server answered for those it withheld. */
export interface RecordsRead {
  records: HealthRecord[];
  /** One per record the server could not open or verify, naming it (its data is not sent). */
  withheld: ApiError[];
}

/**
 * Every record of the patient the caller may read, page after page: a view that stopped at the
 * first hundred would hide a patient's older conditions and allergies. A record the server
 * withholds comes back as an error beside its page; the rest of the page is still shown.
 */
export async function allRecordsOf(patientId: string): Promise<RecordsRead> {
  const withheld: ApiError[] = [];
  const records = await allPages<HealthRecord>((after) =>
    gqlPartial<{ records: Paged<HealthRecord> }>(
      `query($p: ID!, $after: String) { records(patientId: $p, first: 100, after: $after) {
         items { ${RECORD_FIELDS} } nextCursor } }`,
      { p: patientId, after },
    ).then(({ data, errors }) => {
      withheld.push(...errors);
      return data.records;
    }),
  );
  return { records, withheld };
}

/**
 * Why a record was withheld, in the reader's words: the server answers INTERNAL, whose general
 * words ("failed unexpectedly, try again") would send them to retry what cannot succeed.
 */
export const WITHHELD_HELP: Partial<Record<string, string>> = {
  INTERNAL:
    'The server could not open them or match them to the ledger, so it kept them back rather than show what may have been altered.',
};

/**
 * When the record is about: the server's clinical date, else when it was stored. The server
 * reads every type's date element (an Immunization's occurrence, a Procedure's performed
 * period, …), which the console does not try to repeat.
 */
export function clinicalDate(r: HealthRecord): string {
  return r.effectiveAt ?? r.createdAt;
}

/** Newest first by clinical date, then by id, so that the order is the same on every load. */
export function newestFirst(a: HealthRecord, b: HealthRecord): number {
  return Date.parse(clinicalDate(b)) - Date.parse(clinicalDate(a)) || a.id.localeCompare(b.id);
}

interface Coding {
  system?: string;
  code?: string;
  display?: string;
}

interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

/**
 * The element that says what the record is about: `code` for most types, but a vaccine, a
 * medication or an encounter is named elsewhere (Encounter.type is a list; its first says).
 */
function conceptOf(resource: Record<string, unknown>): CodeableConcept | undefined {
  const type = resource.type as CodeableConcept[] | undefined;
  return (resource.code ??
    resource.vaccineCode ??
    resource.medicationCodeableConcept ??
    (Array.isArray(type) ? type[0] : undefined)) as CodeableConcept | undefined;
}

/** The record's code (e.g. a LOINC code), if it has one. */
export function codeOf(resource: Record<string, unknown>): string | undefined {
  const code = resource.code as CodeableConcept | undefined;
  return code?.coding?.[0]?.code;
}

/** What the record is about in words: the concept's text, else its first display, else code. */
function nameOf(resource: Record<string, unknown>): string {
  const concept = conceptOf(resource);
  const coding = concept?.coding?.[0];
  return concept?.text ?? coding?.display ?? coding?.code ?? '';
}

/** UCUM codes of time: written as codes they read as nothing to a patient ("Age, in a"). */
const TIME_UNITS: Record<string, [string, string]> = {
  a: ['year', 'years'],
  mo: ['month', 'months'],
  wk: ['week', 'weeks'],
  d: ['day', 'days'],
  h: ['hour', 'hours'],
  min: ['minute', 'minutes'],
};

/** UCUM codes as people write them (Synthea and most EHRs send the codes as the unit). */
const UCUM_WRITTEN: Record<string, string> = {
  Cel: '°C',
  '[degF]': '°F',
  'mm[Hg]': 'mmHg',
  '10*3/uL': '×10³/µL',
  '10*6/uL': '×10⁶/µL',
  '10*9/L': '×10⁹/L',
  '10*12/L': '×10¹²/L',
  'kg/m2': 'kg/m²',
  'mL/min/{1.73_m2}': 'mL/min/1.73 m²',
  '{beats}/min': 'beats/min',
  '{breaths}/min': 'breaths/min',
  uL: 'µL',
  ug: 'µg',
  'ug/L': 'µg/L',
  'ug/dL': 'µg/dL',
  'umol/L': 'µmol/L',
  '{score}': '',
  '{#}': '',
  '1': '',
};

/**
 * A unit in words: UCUM codes of time spelt out (plural unless `value` is 1), the common UCUM
 * codes as written by hand (Cel as °C, mm[Hg] as mmHg, 10*3/uL as ×10³/µL, a bare annotation
 * such as {score} as nothing); any other unit (mmol/L, mg/dL, kg, %) as written.
 */
export function unitWords(unit: string, value?: number): string {
  if (Object.hasOwn(UCUM_WRITTEN, unit)) return UCUM_WRITTEN[unit];
  if (!Object.hasOwn(TIME_UNITS, unit)) return unit;
  const [one, many] = TIME_UNITS[unit];
  return value === 1 ? one : many;
}

/**
 * A measured number as a person reads it: machines send 24.70967920687918 mmol/L, which no
 * instrument measured; one decimal from 10 up, two from 1, four below, trailing zeros
 * dropped. Whole numbers as they are.
 */
function numberText(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const size = Math.abs(value);
  const decimals = size >= 10 ? 1 : size >= 1 ? 2 : 4;
  return String(Number(value.toFixed(decimals)));
}

/** FHIR's comparators: the true value lies beyond the one written, it was not measured as it. */
export type Comparator = '<' | '<=' | '>=' | '>';

export interface Quantity {
  value: number;
  /** The unit as written: the quantity's text, else its UCUM code. */
  unit: string;
  /** Set when the value is a bound (below detection, above range), not an exact value. */
  comparator?: Comparator;
}

interface FhirQuantity {
  value?: number;
  unit?: string;
  code?: string;
  comparator?: Comparator;
}

/** A valueQuantity (of a resource or a component) that has a number. */
export function quantityOf(q: FhirQuantity | undefined): Quantity | undefined {
  if (typeof q?.value !== 'number') return undefined;
  const unit = q.unit ?? q.code ?? '';
  return q.comparator
    ? { value: q.value, unit, comparator: q.comparator }
    : { value: q.value, unit };
}

/** The number with its comparator, if any: "< 0.5", never a bare 0.5 for a bound. */
export function valueText(q: Quantity): string {
  const n = numberText(q.value);
  return q.comparator ? `${q.comparator} ${n}` : n;
}

/** "< 0.5 mmol/L", "3 days": the value with its comparator, if any, and its unit in words. */
export function quantityText(q: Quantity): string {
  return `${valueText(q)} ${unitWords(q.unit, q.value)}`.trim();
}

/** Whole years from one full date (YYYY-MM-DD…) to another; undefined if either is partial. */
function yearsBetween(from: string, to: string): number | undefined {
  const full = /^(\d{4})-(\d{2}-\d{2})/;
  const [a, b] = [full.exec(from), full.exec(to)];
  if (!a || !b) return undefined;
  return Number(b[1]) - Number(a[1]) - (b[2] < a[2] ? 1 : 0);
}

/**
 * A Patient resource in a line: name, birth date and age. A deceased patient's age is their
 * age at death: counted on to today it would keep growing after they died.
 */
function patientSummary(resource: Record<string, unknown>): string {
  const name = (resource.name as { text?: string; given?: string[]; family?: string }[])?.[0];
  const named = name?.text ?? [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
  const born = typeof resource.birthDate === 'string' ? resource.birthDate : undefined;
  const died =
    typeof resource.deceasedDateTime === 'string' ? resource.deceasedDateTime : undefined;
  const parts = [named, born && `born ${born}`];
  if (died) {
    const age = born && yearsBetween(born, died);
    parts.push(`died ${died.slice(0, 10)}${typeof age === 'number' ? ` at ${age}` : ''}`);
  } else if (resource.deceasedBoolean === true) {
    parts.push('deceased');
  } else if (born) {
    const age = yearsBetween(born, new Date().toISOString());
    if (age !== undefined) parts.push(`age ${age}`);
  }
  const line = parts.filter(Boolean).join(', ');
  return line.charAt(0).toUpperCase() + line.slice(1);
}

/**
 * The value an Observation (or one of its components) holds, in words: a quantity with its
 * unit, a coded answer by its text ("Never smoker"), a string, a number, yes or no.
 */
function valueWords(part: Record<string, unknown>): string | undefined {
  const q = quantityOf(part.valueQuantity as FhirQuantity | undefined);
  if (q) return quantityText(q);
  const coded = part.valueCodeableConcept as CodeableConcept | undefined;
  const said = coded?.text ?? coded?.coding?.[0]?.display ?? coded?.coding?.[0]?.code;
  if (said) return said;
  if (typeof part.valueString === 'string') return part.valueString;
  if (typeof part.valueInteger === 'number') return String(part.valueInteger);
  if (typeof part.valueBoolean === 'boolean') return part.valueBoolean ? 'yes' : 'no';
  return undefined;
}

/**
 * An Observation's components in a line: a blood pressure as systolic/diastolic ("120/80
 * mmHg"), any other as each component's name and value.
 */
function componentWords(resource: Record<string, unknown>): string | undefined {
  const parts = resource.component as Record<string, unknown>[] | undefined;
  if (!Array.isArray(parts) || !parts.length) return undefined;
  const coded = (code: string) =>
    parts.find((p) =>
      (p.code as CodeableConcept | undefined)?.coding?.some((c) => c.code === code),
    );
  const [sys, dia] = [coded('8480-6'), coded('8462-4')].map((p) =>
    quantityOf(p?.valueQuantity as FhirQuantity | undefined),
  );
  if (sys && dia) return `${valueText(sys)}/${valueText(dia)} ${unitWords(sys.unit)}`.trim();
  const said = parts
    .map((p) => {
      const value = valueWords(p);
      return value && [nameOf(p), value].filter(Boolean).join(' ');
    })
    .filter(Boolean);
  return said.length ? said.join(', ') : undefined;
}

/** Words for a record of a type with no code: its title, description or category. */
function describedAs(resource: Record<string, unknown>): string | undefined {
  for (const key of ['title', 'description']) {
    const v = resource[key];
    if (typeof v === 'string' && v) return v;
    const text = (v as CodeableConcept | undefined)?.text;
    if (text) return text;
  }
  const category = resource.category as CodeableConcept[] | undefined;
  const first = Array.isArray(category) ? category[0] : undefined;
  return first?.text ?? first?.coding?.[0]?.display;
}

/** A one-line description: what the record is about and the value, with its unit. */
export function summaryOf(resource: Record<string, unknown>): string {
  const name =
    resource.resourceType === 'Patient'
      ? patientSummary(resource)
      : nameOf(resource) || describedAs(resource);
  const value = valueWords(resource) ?? componentWords(resource);
  return [name, value].filter(Boolean).join(': ') || String(resource.resourceType ?? '');
}

export interface LabPoint extends Quantity {
  date: string;
}

/** An Observation's numeric value with its unit and clinical date, when it has a value. */
export function labPoint(r: HealthRecord): LabPoint | undefined {
  const q = quantityOf(r.resource.valueQuantity as FhirQuantity | undefined);
  return q && { ...q, date: clinicalDate(r) };
}

export const INTEGRITY_WORDS: Record<HealthRecord['integrity'], string> = {
  VERIFIED: 'Verified against the ledger',
  PENDING: 'Not yet anchored on the ledger',
  MISMATCH: 'Does not match the ledger',
};
