// verify-ledger's check of record anchors: every stored record version (current and
// superseded) that the database says is anchored has an anchor on the ledger, for the same
// patient and the same content hash. One the database still has pending is counted, not a
// break: anchoring runs after the write and retries until the ledger answers. And the other
// way: every record the ledger anchored for a patient held here is stored, no older than
// its latest anchor.
import type { RecordAnchor } from '@custodia/chaincode';
import type { QueryRows } from '../audit/verify';
import { NotFoundError } from '../common/errors';
import type { Ledger } from '../ledger';
import { everyPage } from '../ledger/every-page';

export interface RecordAnchorCheck {
  /** Record versions in the database. */
  versions: number;
  /** Of which anchored, and found on the ledger as stored. */
  anchored: number;
  /** Of which not yet anchored (PENDING). */
  pending: number;
  /** Records of this instance's patients (not erased) that the ledger holds anchors of. */
  ledgerRecords: number;
  problems: string[];
}

/** Versions asked of the ledger at once. */
const CONCURRENCY = 16;

export async function verifyRecordAnchors(
  rows: QueryRows,
  ledger: Pick<Ledger, 'evaluate'>,
): Promise<RecordAnchorCheck> {
  // The ledger first: a record is stored before it is anchored, so every anchor listed now
  // has its row by the time storage is read (the other order would see anchors of records
  // written meanwhile as rows deleted).
  const latest = await latestAnchors(ledger);
  const versions = (await rows(
    `SELECT id AS record_id, version, patient_id, content_hash, anchor_state, true AS current
     FROM records
     UNION ALL
     SELECT record_id, version, patient_id, content_hash, anchor_state, false FROM record_versions
     ORDER BY record_id, version`,
    [],
  )) as {
    record_id: string;
    version: number;
    patient_id: string;
    content_hash: string;
    anchor_state: 'PENDING' | 'ANCHORED';
    current: boolean;
  }[];
  const anchoredRows = versions.filter((v) => v.anchor_state === 'ANCHORED');
  const check: RecordAnchorCheck = {
    versions: versions.length,
    anchored: 0,
    pending: versions.length - anchoredRows.length,
    ledgerRecords: 0,
    problems: [],
  };
  await compareWithLedger(rows, latest, versions, check);
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

/** Every record's latest anchor on the ledger, a page at a time. */
function latestAnchors(ledger: Pick<Ledger, 'evaluate'>): Promise<RecordAnchor[]> {
  return everyPage<RecordAnchor>(ledger, 'records', 'ListRecordAnchors', 'anchors');
}

/**
 * The ledger's side: each record of a patient held here (and not erased, whose records go
 * with them) that the ledger anchored is stored, at its latest anchored version or later (a
 * newer version waits for its anchor). A row deleted, or put back to an older version, is a
 * problem; the rows alone could never show it.
 */
async function compareWithLedger(
  rows: QueryRows,
  latest: readonly RecordAnchor[],
  versions: readonly { record_id: string; version: number; current: boolean }[],
  check: RecordAnchorCheck,
): Promise<void> {
  const patients = (await rows('SELECT id, erased_at IS NOT NULL AS erased FROM patients', [])) as {
    id: string;
    erased: boolean;
  }[];
  const live = new Set(patients.filter((p) => !p.erased).map((p) => p.id));
  const stored = new Map(versions.filter((v) => v.current).map((v) => [v.record_id, v.version]));
  for (const a of latest) {
    // Another organisation's patient (on a shared ledger), or one erased: not ours to hold.
    if (!live.has(a.patientId)) continue;
    check.ledgerRecords++;
    const version = stored.get(a.recordId);
    if (version === undefined) {
      check.problems.push(
        `record ${a.recordId} (patient ${a.patientId}) is anchored on the ledger through version ${a.version}, but storage holds no such record: deleted`,
      );
    } else if (version < a.version) {
      check.problems.push(
        `record ${a.recordId} is stored at version ${version}, but the ledger anchored version ${a.version}: rolled back`,
      );
    }
  }
}
