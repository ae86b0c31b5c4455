// Anchors every record version's commitment on the ledger. createRecord tries once, in the
// request, with the hash it has just sealed; whatever stays PENDING (the ledger was down, the
// process died, another instance went away) is retried by an outbox loop with exponential
// backoff until anchored, and swept for periodically (ANCHOR_SWEEP_INTERVAL_MS). The outbox
// anchors only the hash it recomputes from the decrypted row, never the stored column, which
// anyone with write access to the database could have set: a row that does not open, or whose
// stored hash is not its content's, is reported and left pending (until the next start).
// Nothing is anchored twice: a version the ledger already holds is looked up and adopted.
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
import { BoundedMap } from '../common/bounded-map';
import { ConflictError } from '../common/errors';
import { AppConfig, InjectConfig } from '../config';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import type { RecordAnchor } from '@custodia/chaincode';
import { LedgerAnchors } from './ledger-anchors';
import { RecordOpener } from './record-opener';
import { CURRENT_COLUMNS, SUPERSEDED_COLUMNS, VersionRow, versionEntity } from './record-rows';

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
/** Record versions refused (see drainOnce) that are not asked again until the next start. */
const REFUSED_LIMIT = 10_000;

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
  private sweeper?: NodeJS.Timeout;
  /**
   * `id:version` of the pending rows refused in this process: not read again (they would be
   * reported at every pass, and fill a batch), until the next start.
   */
  private readonly refused = new BoundedMap<string, true>(REFUSED_LIMIT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    @InjectConfig() private readonly config: AppConfig,
    private readonly anchors: LedgerAnchors,
    private readonly opener: RecordOpener,
    private readonly integrity: IntegrityMonitor,
  ) {
    this.delay = config.anchorRetryMs;
    this.events.setMaxListeners(0);
  }

  onApplicationBootstrap(): void {
    // Records left PENDING by an earlier run are picked up straight away.
    this.schedule(0);
    // Every deferral in this process schedules a pass itself; the sweep is for rows this
    // process never deferred: left by an instance that went away without restarting, or set
    // back to PENDING in the database. One query over the partial indexes of pending rows
    // (records_pending, record_versions_pending), so it costs next to nothing when idle.
    if (this.config.anchorSweepMs > 0) {
      this.sweeper = setInterval(() => this.schedule(0), this.config.anchorSweepMs);
      this.sweeper.unref();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
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
   * anchored, how many it refused and how many it found still pending (at least one whenever
   * more than a batch waited, so that the next pass follows at once rather than the outbox
   * going idle). Each row is opened and its hash recomputed: that is what is anchored, and a
   * row that does not open, or whose stored hash differs (rewritten while it waited), is
   * refused and reported, so that no commitment the content does not bear reaches the ledger.
   */
  async drainOnce(): Promise<{ anchored: number; pending: number; refused: number }> {
    const rows = await this.db.query<VersionRow[]>(
      // Current and superseded versions alike, in the order they were written (the ledger
      // takes a record's versions in order).
      `SELECT * FROM (
         SELECT ${CURRENT_COLUMNS} FROM records r WHERE r.anchor_state = 'PENDING'
         UNION ALL
         SELECT ${SUPERSEDED_COLUMNS} FROM record_versions v WHERE v.anchor_state = 'PENDING'
       ) pending
       WHERE (pending.id::text || ':' || pending.version) <> ALL($2::text[])
       ORDER BY updated_at, version LIMIT $1`,
      // One row past the batch tells that more wait beyond it.
      [BATCH + 1, [...this.refused].map(([key]) => key)],
    );
    let anchored = 0;
    let refused = 0;
    let failed = 0;
    for (const r of rows.slice(0, BATCH)) {
      if (this.stopped) break;
      if (this.inFlight.has(r.id)) continue;
      const row = versionEntity(r);
      const commitment = await this.opener.commitmentOf(row);
      if (commitment !== row.contentHash) {
        // One that does not open was reported by the opener.
        if (commitment !== null) {
          this.integrity.report(
            'record',
            "pending record's stored content hash is not its content's; not anchored",
            { recordId: row.id, version: row.version },
          );
        }
        this.refused.set(`${row.id}:${row.version}`, true);
        refused++;
        continue;
      }
      try {
        await this.anchor({
          id: row.id,
          version: row.version,
          patientId: row.patientId,
          contentHash: commitment,
        });
        anchored++;
      } catch (e) {
        failed++;
        this.logger.warn({ recordId: r.id, errorType: (e as Error).name }, 'anchoring failed');
        break; // the ledger is likely down: back off rather than hammer it
      }
    }
    const pending = rows.length - anchored - refused;
    this.events.emit('pass', { anchored, pending, failed, refused });
    return { anchored, pending, refused };
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
