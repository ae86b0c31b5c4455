// What a record's ciphertext and ledger commitment are bound to. Format 1 bound only the
// record id, patient id and version; format 2 also binds the labels that access decisions
// read (resource type, category, sensitivity), so relabelling a row in the database makes it
// fail to open instead of changing who may read it.

/** The row identity that format 1 bound into its associated data. */
export interface RecordBinding {
  recordId: string;
  patientId: string;
  version: number;
}

/** Everything format 2 binds: the identity and the labels the consent rule reads. */
export interface RecordLabels extends RecordBinding {
  resourceType: string;
  category: string | null;
  sensitivity: 'NORMAL' | 'RESTRICTED';
}

/**
 * 1: associated data and content hash over the identity only (rows written before labels
 * were bound); 2: both over the labels too.
 */
export type RecordFormat = 1 | 2;

/** The format every new record is sealed and hashed with. */
export const CURRENT_FORMAT: RecordFormat = 2;

/** Just the labels, with fixed keys: never a spread of a wider object into a commitment. */
export function labelsOnly(l: RecordLabels): RecordLabels {
  return {
    recordId: l.recordId,
    patientId: l.patientId,
    version: l.version,
    resourceType: l.resourceType,
    category: l.category,
    sensitivity: l.sensitivity,
  };
}

/**
 * JCS (RFC 8785) of the labels, built directly: keys already in JCS order, and values that are
 * strings, null or a safe integer, which JSON.stringify writes exactly as JCS does. Every read
 * of a record computes it, and a general canonicaliser costs more than the decryption.
 */
export function labelsJcs(l: RecordLabels): string {
  if (!Number.isSafeInteger(l.version)) throw new TypeError('record version must be an integer');
  return JSON.stringify({
    category: l.category,
    patientId: l.patientId,
    recordId: l.recordId,
    resourceType: l.resourceType,
    sensitivity: l.sensitivity,
    version: l.version,
  });
}
