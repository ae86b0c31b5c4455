// Reading the FHIR resources the API returns, for display only.

export interface HealthRecord {
  id: string;
  resourceType: string;
  category: string | null;
  sensitivity: string;
  integrity: 'VERIFIED' | 'PENDING' | 'MISMATCH';
  createdAt: string;
  ledgerTxId: string | null;
  resource: Record<string, unknown>;
}

export const RECORD_FIELDS = `id resourceType category sensitivity integrity createdAt ledgerTxId resource`;

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

/** When the record is about: its effective or onset date, else undefined. */
export function dateOf(resource: Record<string, unknown>): string | undefined {
  const v =
    resource.effectiveDateTime ??
    resource.onsetDateTime ??
    resource.authoredOn ??
    resource.recordedDate ??
    resource.issued;
  return typeof v === 'string' ? v : undefined;
}

export interface LabPoint {
  date: string;
  value: number;
  unit: string;
}

/** An Observation's numeric value with its unit and date, when it has all three. */
export function labPoint(resource: Record<string, unknown>): LabPoint | undefined {
  const q = resource.valueQuantity as { value?: number; unit?: string; code?: string } | undefined;
  const date = dateOf(resource);
  if (typeof q?.value !== 'number' || !date) return undefined;
  return { date, value: q.value, unit: q.unit ?? q.code ?? '' };
}

export const INTEGRITY_WORDS: Record<HealthRecord['integrity'], string> = {
  VERIFIED: 'Verified against the ledger',
  PENDING: 'Not yet anchored on the ledger',
  MISMATCH: 'Does not match the ledger',
};
