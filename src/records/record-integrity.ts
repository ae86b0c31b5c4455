// How a record's integrity is judged: the hash recomputed from what was decrypted against
// the anchor the ledger holds. What the database says about anchoring is never evidence of
// integrity; it only tells a record that should have an anchor from one still waiting.
import { IntegrityStatus } from './record.model';
import type { AnchorState } from './record.entity';

/** What the ledger answered for one record version. */
export type AnchorLookup =
  | { state: 'anchored'; contentHash: string; txId: string }
  /**
   * The version asked is anchored (as given), but the ledger holds a later one: the stored
   * record, which should be that later version, was rolled back.
   */
  | { state: 'superseded'; contentHash: string; txId: string; latestVersion: number }
  | { state: 'absent' }
  /** The ledger could not be asked (down, or timed out). */
  | { state: 'unknown' };

/**
 * VERIFIED only when the ledger's anchor equals the recomputed hash; MISMATCH when it does
 * not, when the row claims an anchor the ledger does not have, or when the ledger holds a
 * later version than the one stored (a record rolled back); PENDING while a record
 * waits for its anchor, or while the ledger cannot be asked (nothing proven either way).
 */
export function integrityOf(
  recomputedHash: string,
  anchor: AnchorLookup,
  claimed: AnchorState,
): IntegrityStatus {
  switch (anchor.state) {
    case 'anchored':
      return anchor.contentHash === recomputedHash
        ? IntegrityStatus.VERIFIED
        : IntegrityStatus.MISMATCH;
    case 'superseded':
      return IntegrityStatus.MISMATCH;
    case 'absent':
      return claimed === 'ANCHORED' ? IntegrityStatus.MISMATCH : IntegrityStatus.PENDING;
    case 'unknown':
      return IntegrityStatus.PENDING;
  }
}
