// The ledger's anchors of record versions: the only authority on what a record's commitment
// is. A committed anchor never changes, so every anchor found (or written by this process)
// is remembered, within a bound: steady-state reads cost no ledger round trip. An absent
// anchor is not remembered, since it may be committed at any moment.
import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { RecordAnchor } from '@custodia/chaincode';
import { BoundedMap } from '../common/bounded-map';
import { NotFoundError } from '../common/errors';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { AnchorLookup } from './record-integrity';

/** About 150 bytes each (key and packed value): some 7 MB at the limit. */
const ANCHOR_CACHE_LIMIT = 50_000;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
/** Sent in place of a stored hash that is no SHA-256 at all (the chaincode validates it). */
const NO_HASH = '0'.repeat(64);

export interface AnchorQuestion {
  recordId: string;
  version: number;
  /** The hash recomputed from the stored record (the chaincode compares it too). */
  contentHash: string;
  /**
   * Whether the version is the record's current one as stored: then a later version on the
   * ledger means the stored record was rolled back ('superseded'). False for the older
   * versions of a history.
   */
  current: boolean;
}

@Injectable()
export class LedgerAnchors {
  private readonly logger = new Logger(LedgerAnchors.name);
  /** Each anchor packed into one string (see pack): a third of the memory of an object of two. */
  private readonly known = new BoundedMap<string, string>(ANCHOR_CACHE_LIMIT);
  /**
   * By record, the latest version known anchored (here or read from the ledger): a current
   * row of an older version was rolled back. A record not here is asked of the ledger.
   */
  private readonly latest = new BoundedMap<string, number>(ANCHOR_CACHE_LIMIT);

  constructor(
    @Inject(LEDGER) private readonly ledger: Ledger,
    /** To tell a record rolled back from one amended since it was read (none in unit tests). */
    @Optional() @InjectDataSource() private readonly db?: DataSource,
    /** Where a record found rolled back is reported (none in unit tests). */
    @Optional() private readonly integrity?: IntegrityMonitor,
  ) {}

  /** Notes an anchor this process saw committed (or read back from the ledger). */
  remember(recordId: string, version: number, anchor: { contentHash: string; txId: string }): void {
    this.known.set(keyOf(recordId, version), pack(anchor.contentHash, anchor.txId));
    this.noteLatest(recordId, version);
  }

  /**
   * An anchor found, or 'superseded' when the stored current row is older than the ledger's
   * newest version. A row amended since the caller read it (its newer version committed, and
   * anchored, meanwhile) is not that: storage has moved on, and what was read was current.
   */
  async judge(
    q: AnchorQuestion,
    anchor: Extract<AnchorLookup, { state: 'anchored' }>,
    latestVersion: number,
  ): Promise<AnchorLookup> {
    if (!q.current || latestVersion <= q.version) return anchor;
    if (this.db) {
      const [row] = (await this.db.query('SELECT version FROM records WHERE id = $1', [
        q.recordId,
      ])) as { version: number }[];
      if (row && row.version > q.version) return anchor;
    }
    this.integrity?.report(
      'record',
      'record rolled back to an older version than the ledger holds',
      {
        recordId: q.recordId,
        version: q.version,
        latestVersion,
      },
    );
    return { ...anchor, state: 'superseded', latestVersion };
  }

  private noteLatest(recordId: string, version: number): void {
    if ((this.latest.get(recordId) ?? 0) < version) this.latest.set(recordId, version);
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
    const latest = this.latest.get(q.recordId);
    if (known !== undefined && (!q.current || latest !== undefined)) {
      return this.judge(q, unpack(known), latest ?? q.version);
    }
    try {
      const anchor = await this.ledger.evaluate<RecordAnchor & { latestVersion?: number }>(
        'records',
        'VerifyRecord',
        // Only `matches` depends on the hash sent, and it is not used: the anchor's own hash is.
        [q.recordId, String(q.version), HEX_SHA256.test(q.contentHash) ? q.contentHash : NO_HASH],
      );
      const found = {
        state: 'anchored',
        contentHash: anchor.contentHash,
        txId: anchor.txId,
      } as const;
      this.known.set(keyOf(q.recordId, q.version), pack(found.contentHash, found.txId));
      // A ledger whose chaincode predates latestVersion says nothing of later versions.
      const latestVersion = anchor.latestVersion ?? q.version;
      this.noteLatest(q.recordId, latestVersion);
      return this.judge(q, found, this.latest.get(q.recordId) ?? latestVersion);
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

/**
 * An anchor as one string: two hex SHA-256 values (the usual case: content hash and a Fabric
 * or embedded transaction id) as their 64 bytes in latin1 after a "1"; anything else as "0",
 * the content hash, a newline and the transaction id.
 */
function pack(contentHash: string, txId: string): string {
  if (HEX_SHA256.test(contentHash) && HEX_SHA256.test(txId)) {
    return '1' + Buffer.from(contentHash + txId, 'hex').toString('latin1');
  }
  return `0${contentHash}\n${txId}`;
}

function unpack(packed: string): Extract<AnchorLookup, { state: 'anchored' }> {
  if (packed[0] === '1') {
    const hex = Buffer.from(packed.slice(1), 'latin1').toString('hex');
    return { state: 'anchored', contentHash: hex.slice(0, 64), txId: hex.slice(64) };
  }
  const newline = packed.indexOf('\n');
  return {
    state: 'anchored',
    contentHash: packed.slice(1, newline),
    txId: packed.slice(newline + 1),
  };
}

function keyOf(recordId: string, version: number): string {
  return `${recordId}:${version}`;
}
