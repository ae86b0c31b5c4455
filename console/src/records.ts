// Reading the FHIR resources the API returns, for display only.
import { gql } from './api';
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

/**
 * Every record of the patient the caller may read, page after page: a view that stopped at the
 * first hundred would hide a patient's older conditions and allergies.
 */
export function allRecordsOf(patientId: string): Promise<HealthRecord[]> {
  return allPages<HealthRecord>((after) =>
    gql<{ records: Paged<HealthRecord> }>(
      `query($p: ID!, $after: String) { records(patientId: $p, first: 100, after: $after) {
         items { ${RECORD_FIELDS} } nextCursor } }`,
      { p: patientId, after },
    ).then((d) => d.records),
  );
}

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

function codings(resource: Record<string, unknown>): Coding[] {
  const code = resource.code as { coding?: Coding[]; text?: string } | undefined;
  return code?.coding ?? [];
}

/** The record's code (e.g. a LOINC code), if it has one. */
export function codeOf(resource: Record<string, unknown>): string | undefined {
  return codings(resource)[0]?.code;
}

/** A one-line description: the code's display text and the value, with its unit. */
export function summaryOf(resource: Record<string, unknown>): string {
  const code = resource.code as { text?: string } | undefined;
  const name = code?.text ?? codings(resource)[0]?.display ?? codeOf(resource) ?? '';
  const q = resource.valueQuantity as { value?: number; unit?: string } | undefined;
  const value = q?.value !== undefined ? `${q.value}${q.unit ? ` ${q.unit}` : ''}` : '';
  return [name, value].filter(Boolean).join(': ') || String(resource.resourceType ?? '');
}

export interface LabPoint {
  date: string;
  value: number;
  unit: string;
}

/** An Observation's numeric value with its unit and clinical date, when it has a value. */
export function labPoint(r: HealthRecord): LabPoint | undefined {
  const q = r.resource.valueQuantity as
    { value?: number; unit?: string; code?: string } | undefined;
  if (typeof q?.value !== 'number') return undefined;
  return { date: clinicalDate(r), value: q.value, unit: q.unit ?? q.code ?? '' };
}

export const INTEGRITY_WORDS: Record<HealthRecord['integrity'], string> = {
  VERIFIED: 'Verified against the ledger',
  PENDING: 'Not yet anchored on the ledger',
  MISMATCH: 'Does not match the ledger',
};
