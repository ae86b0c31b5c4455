// verify-ledger's check of record anchors: every stored record version (current and
// superseded) that the database says is anchored has an anchor on the ledger, for the same
// patient and the same content hash. One the database still has pending is counted, not a
// break: anchoring runs after the write and retries until the ledger answers.
import type { RecordAnchor } from '@custodia/chaincode';
import type { QueryRows } from '../audit/verify';
import { NotFoundError } from '../common/errors';

export interface RecordAnchorCheck {
  /** Record versions in the database. */
  versions: number;
  /** Of which anchored, and found on the ledger as stored. */
  anchored: number;
  /** Of which not yet anchored (PENDING). */
  pending: number;
  problems: string[];
}

interface AnchorReader {
  evaluate<T>(contract: 'records', fn: string, args: string[]): Promise<T>;
}

/** Versions asked of the ledger at once. */
const CONCURRENCY = 16;

export async function verifyRecordAnchors(
  rows: QueryRows,
  ledger: AnchorReader,
): Promise<RecordAnchorCheck> {
  const versions = (await rows(
    `SELECT id AS record_id, version, patient_id, content_hash, anchor_state FROM records
     UNION ALL
     SELECT record_id, version, patient_id, content_hash, anchor_state FROM record_versions
     ORDER BY record_id, version`,
    [],
  )) as {
    record_id: string;
    version: number;
    patient_id: string;
    content_hash: string;
    anchor_state: 'PENDING' | 'ANCHORED';
  }[];
  const anchoredRows = versions.filter((v) => v.anchor_state === 'ANCHORED');
  const check: RecordAnchorCheck = {
    versions: versions.length,
    anchored: 0,
    pending: versions.length - anchoredRows.length,
    problems: [],
  };
  for (let i = 0; i < anchoredRows.length; i += CONCURRENCY) {
    const results = await Promise.all(
      anchoredRows.slice(i, i + CONCURRENCY).map(async (v) => {
        const which = `version ${v.version} of record ${v.record_id}`;
        try {
          const anchor = await ledger.evaluate<RecordAnchor & { matches: boolean }>(
            'records',
            'VerifyRecord',
            [v.record_id, String(v.version), v.content_hash],
          );
          if (anchor.patientId !== v.patient_id) {
            return `${which} is stored for another patient than the ledger anchored it for`;
          }
          if (!anchor.matches) {
            return `${which}: its content hash differs from the one anchored on the ledger (transaction ${anchor.txId})`;
          }
          return null;
        } catch (e) {
          if (e instanceof NotFoundError) {
            return `${which} is marked anchored, but the ledger holds no anchor for it`;
          }
          throw e;
        }
      }),
    );
    for (const problem of results) {
      if (problem) check.problems.push(problem);
      else check.anchored++;
    }
  }
  return check;
}
