import { IntegrityStatus } from './record.model';
import { AnchorLookup, integrityOf } from './record-integrity';

const hash = 'a'.repeat(64);
const anchored = (contentHash: string): AnchorLookup => ({
  state: 'anchored',
  contentHash,
  txId: 't'.repeat(64),
});

describe('record integrity', () => {
  it.each(['ANCHORED', 'PENDING'] as const)(
    'is VERIFIED when the ledger anchor equals the recomputed hash, whatever the row claims (%s)',
    (claimed) => {
      expect(integrityOf(hash, anchored(hash), claimed)).toBe(IntegrityStatus.VERIFIED);
    },
  );

  it.each(['ANCHORED', 'PENDING'] as const)(
    'is MISMATCH when the ledger anchor differs, whatever the row claims (%s)',
    (claimed) => {
      expect(integrityOf(hash, anchored('b'.repeat(64)), claimed)).toBe(IntegrityStatus.MISMATCH);
    },
  );

  it('is MISMATCH when the row claims an anchor the ledger does not hold', () => {
    expect(integrityOf(hash, { state: 'absent' }, 'ANCHORED')).toBe(IntegrityStatus.MISMATCH);
  });

  it('is PENDING for a record still waiting for its anchor', () => {
    expect(integrityOf(hash, { state: 'absent' }, 'PENDING')).toBe(IntegrityStatus.PENDING);
  });

  it('is never VERIFIED while the ledger cannot be asked', () => {
    expect(integrityOf(hash, { state: 'unknown' }, 'ANCHORED')).toBe(IntegrityStatus.PENDING);
  });
});
