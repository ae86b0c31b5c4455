// Anchors every record version's commitment on the ledger. createRecord tries once, in the
// request; whatever stays PENDING (the ledger was down, the process died) is retried by an
// outbox loop with exponential backoff until anchored. Nothing is anchored twice: a version
// the ledger already holds is looked up and adopted instead.
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { EventEmitter } from 'node:events';
import { DataSource } from 'typeorm';
import { ConflictError } from '../common/errors';
import { AppConfig, InjectConfig } from '../config';
import { Ledger, LEDGER } from '../ledger';
import type { RecordAnchor } from '@custodia/chaincode';
import { LedgerAnchors } from './ledger-anchors';

export interface AnchorCandidate {
  id: string;
  version: number;
  patientId: string;
  contentHash: string;
}

export interface Anchored {
  txId: string;
  /** The hash the ledger holds for this version (equal to ours unless something was altered). */
  ledgerHash: string;
}

const MAX_BACKOFF_MS = 30_000;
const BATCH = 200;

@Injectable()
export class RecordAnchoring implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RecordAnchoring.name);
  /** 'anchored' (recordId) after each anchor; 'pass' ({anchored, pending}) after each outbox pass. */
  readonly events = new EventEmitter();
  private readonly inFlight = new Set<string>();
  private timer?: NodeJS.Timeout;
  private delay: number;
  private stopped = false;
  private passing?: Promise<void>;
  /** A record was deferred while a pass ran: run another after it. */
  private again = false;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    @InjectConfig() private readonly config: AppConfig,
    private readonly anchors: LedgerAnchors,
  ) {
    this.delay = config.anchorRetryMs;
    this.events.setMaxListeners(0);
  }

  onApplicationBootstrap(): void {
    // Records left PENDING by an earlier run are picked up straight away.
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.passing;
  }

  /** One attempt, as part of a request; on failure the outbox takes over. */
  async anchorNow(record: AnchorCandidate): Promise<Anchored | null> {
    this.inFlight.add(record.id);
    try {
      return await this.anchor(record);
    } catch (e) {
      this.logger.warn(
        { recordId: record.id, errorType: (e as Error).name },
        'anchoring deferred to the outbox',
      );
      this.schedule(this.config.anchorRetryMs);
      return null;
    } finally {
      this.inFlight.delete(record.id);
    }
  }

  /**
   * One outbox pass over up to BATCH of the PENDING records, oldest first; returns how many it
   * anchored and how many it found still pending (at least one whenever more than a batch
   * waited, so that the next pass follows at once rather than the outbox going idle).
   */
  async drainOnce(): Promise<{ anchored: number; pending: number }> {
    const rows = await this.db.query<
      { id: string; version: number; patient_id: string; content_hash: string }[]
    >(
      // Current and superseded versions alike, in the order they were written (the ledger
      // takes a record's versions in order).
      `SELECT id, version, patient_id, content_hash FROM (
         SELECT id, version, patient_id, content_hash, updated_at FROM records
         WHERE anchor_state = 'PENDING'
         UNION ALL
         SELECT record_id, version, patient_id, content_hash, updated_at FROM record_versions
         WHERE anchor_state = 'PENDING'
       ) pending ORDER BY updated_at, version LIMIT $1`,
      // One row past the batch tells that more wait beyond it.
      [BATCH + 1],
    );
    let anchored = 0;
    let failed = 0;
    for (const r of rows.slice(0, BATCH)) {
      if (this.stopped) break;
      if (this.inFlight.has(r.id)) continue;
      try {
        await this.anchor({
          id: r.id,
          version: r.version,
          patientId: r.patient_id,
          contentHash: r.content_hash,
        });
        anchored++;
      } catch (e) {
        failed++;
        this.logger.warn({ recordId: r.id, errorType: (e as Error).name }, 'anchoring failed');
        break; // the ledger is likely down: back off rather than hammer it
      }
    }
    const pending = rows.length - anchored;
    this.events.emit('pass', { anchored, pending, failed });
    return { anchored, pending };
  }

  private async anchor(record: AnchorCandidate): Promise<Anchored> {
    let anchored: Anchored;
    try {
      const { txId } = await this.ledger.submit('records', 'AnchorRecord', [
        record.id,
        String(record.version),
        record.patientId,
        record.contentHash,
      ]);
      anchored = { txId, ledgerHash: record.contentHash };
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
      // Anchored before (by an earlier attempt whose answer was lost): adopt that anchor.
      const existing = await this.ledger.evaluate<RecordAnchor & { matches: boolean }>(
        'records',
        'VerifyRecord',
        [record.id, String(record.version), record.contentHash],
      );
      anchored = { txId: existing.txId, ledgerHash: existing.contentHash };
    }
    // Committed, so reads of this version need not ask the ledger again.
    this.anchors.remember(record.id, record.version, {
      contentHash: anchored.ledgerHash,
      txId: anchored.txId,
    });
    // The version is current or, if amended meanwhile, superseded: one of these matches.
    await this.db.query(
      `WITH current AS (
         UPDATE records SET anchor_state = 'ANCHORED', anchored_hash = $3, ledger_tx_id = $4
         WHERE id = $1 AND version = $2 AND anchor_state = 'PENDING')
       UPDATE record_versions SET anchor_state = 'ANCHORED', anchored_hash = $3, ledger_tx_id = $4
       WHERE record_id = $1 AND version = $2 AND anchor_state = 'PENDING'`,
      [record.id, record.version, anchored.ledgerHash, anchored.txId],
    );
    this.events.emit('anchored', record.id);
    return anchored;
  }

  /** Runs a pass after `ms`, unless one is already due (a backoff is never cut short). */
  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => void this.pass(), ms);
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    this.timer = undefined;
    this.again = false;
    let result = { anchored: 0, pending: 0 };
    this.passing = this.drainOnce().then(
      (r) => {
        result = r;
      },
      (e: unknown) => {
        result = { anchored: 0, pending: 1 };
        this.logger.warn({ errorType: (e as Error).name }, 'outbox pass failed');
      },
    );
    await this.passing;
    this.passing = undefined;
    if (result.pending === 0 && !this.again) {
      this.delay = this.config.anchorRetryMs;
      return; // idle until a request defers a record again
    }
    if (result.anchored > 0 || result.pending === 0) {
      this.delay = this.config.anchorRetryMs;
      this.schedule(result.anchored > 0 ? 0 : this.delay);
    } else {
      this.delay = Math.min(this.delay * 2, MAX_BACKOFF_MS);
      this.schedule(this.delay);
    }
  }
}
