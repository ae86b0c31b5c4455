// The ledger's anchors of record versions: the only authority on what a record's commitment
// is. A committed anchor never changes, so every anchor found (or written by this process)
// is remembered, within a bound: steady-state reads cost no ledger round trip. An absent
// anchor is not remembered, since it may be committed at any moment.
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { RecordAnchor } from '@custodia/chaincode';
import { BoundedMap } from '../common/bounded-map';
import { NotFoundError } from '../common/errors';
import { Ledger, LEDGER } from '../ledger';
import { AnchorLookup } from './record-integrity';

/** About 200 bytes each: some 10 MB at the limit. */
const ANCHOR_CACHE_LIMIT = 50_000;

export interface AnchorQuestion {
  recordId: string;
  version: number;
  /** The hash recomputed from the stored record (the chaincode compares it too). */
  contentHash: string;
}

@Injectable()
export class LedgerAnchors {
  private readonly logger = new Logger(LedgerAnchors.name);
  private readonly known = new BoundedMap<string, Extract<AnchorLookup, { state: 'anchored' }>>(
    ANCHOR_CACHE_LIMIT,
  );

  constructor(@Inject(LEDGER) private readonly ledger: Ledger) {}

  /** Notes an anchor this process saw committed (or read back from the ledger). */
  remember(recordId: string, version: number, anchor: { contentHash: string; txId: string }): void {
    const { contentHash, txId } = anchor;
    this.known.set(keyOf(recordId, version), { state: 'anchored', contentHash, txId });
  }

  /**
   * The anchors of a page of record versions, in order: remembered ones at no cost, the rest
   * asked of the ledger concurrently (the chaincode reads one version per call), so a page
   * costs one round trip at most.
   */
  lookup(questions: readonly AnchorQuestion[]): Promise<AnchorLookup[]> {
    return Promise.all(questions.map((q) => this.lookupOne(q)));
  }

  async lookupOne(q: AnchorQuestion): Promise<AnchorLookup> {
    const known = this.known.get(keyOf(q.recordId, q.version));
    if (known) return known;
    try {
      const anchor = await this.ledger.evaluate<RecordAnchor>('records', 'VerifyRecord', [
        q.recordId,
        String(q.version),
        q.contentHash,
      ]);
      const found = {
        state: 'anchored',
        contentHash: anchor.contentHash,
        txId: anchor.txId,
      } as const;
      this.known.set(keyOf(q.recordId, q.version), found);
      return found;
    } catch (e) {
      if (e instanceof NotFoundError) return { state: 'absent' };
      this.logger.warn(
        { recordId: q.recordId, errorType: (e as Error).name },
        'record anchor could not be read from the ledger',
      );
      return { state: 'unknown' };
    }
  }
}

function keyOf(recordId: string, version: number): string {
  return `${recordId}:${version}`;
}
