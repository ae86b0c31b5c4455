// Keeps the consent projection in step with the ledger: applies committed consent events
// from a persisted checkpoint, so grants written through any organisation's API appear here,
// and a restarted API resumes where it stopped. Safe to replay (see ConsentProjection).
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { EmergencyAccessSetting, GrantRecord, PatientKeyring } from '@custodia/chaincode';
import { EventEmitter } from 'node:events';
import { DataSource } from 'typeorm';
import { Checkpoint, EventSubscription, Ledger, LEDGER, LedgerEvent } from '../ledger';
import { PatientsService } from '../patients';
import { ConsentProjection } from './consent-projection';
import { SignedConsentSettings } from './signed-consent-settings';

/** The projector's row in ledger_checkpoints: the last transaction it has applied. */
export const CONSENT_PROJECTOR = 'consent-projection';
const CONSUMER = CONSENT_PROJECTOR;
const SETTING_EVENT = 'SignedConsentSet';
const EMERGENCY_SETTING_EVENT = 'EmergencyAccessSet';
const CONSENT_EVENTS = new Set([
  'ConsentGranted',
  'ConsentRevoked',
  SETTING_EVENT,
  EMERGENCY_SETTING_EVENT,
]);
/**
 * A grant event committed longer ago than this is a replay (catching up after a restart or an
 * outage), not news: the grant may have been revoked since, in a block not yet delivered.
 */
export const REPLAY_AGE_MS = 5_000;
const CHECKPOINT = `INSERT INTO ledger_checkpoints (consumer, block_number, tx_index, updated_at)
  VALUES ($1, $2, $3, now())
  ON CONFLICT (consumer) DO UPDATE SET block_number = EXCLUDED.block_number,
    tx_index = EXCLUDED.tx_index, updated_at = now()`;

@Injectable()
export class ConsentProjector implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ConsentProjector.name);
  /** Emits 'applied' (LedgerEvent) after each consent event is in the projection. */
  readonly events = new EventEmitter();
  private subscription?: EventSubscription;
  private stopped = false;
  /** How old a grant event must be to count as a replay (tests make every event one). */
  replayAgeMs = REPLAY_AGE_MS;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly projection: ConsentProjection,
    private readonly settings: SignedConsentSettings,
    private readonly patients: PatientsService,
  ) {
    this.events.setMaxListeners(0);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.subscription?.close();
  }

  /** Forgets the projection and its checkpoint, and rebuilds both from the ledger. */
  async rebuild(): Promise<void> {
    await this.subscription?.close();
    this.projection.forgetApplied();
    await this.db.transaction(async (m) => {
      await m.query('DELETE FROM consent_grants');
      await m.query('DELETE FROM signed_consent_settings');
      await m.query('DELETE FROM ledger_checkpoints WHERE consumer = $1', [CONSUMER]);
    });
    await this.start();
  }

  private async start(): Promise<void> {
    const rows: { block_number: string; tx_index: number }[] = await this.db.query(
      'SELECT block_number, tx_index FROM ledger_checkpoints WHERE consumer = $1',
      [CONSUMER],
    );
    const from: Checkpoint | null = rows.length
      ? { blockNumber: Number(rows[0].block_number), txIndex: rows[0].tx_index }
      : null;
    this.subscription = this.ledger.subscribe(from, (e) => this.handle(e));
  }

  /** Applies one event, retrying with backoff while the database is unavailable. */
  private async handle(event: LedgerEvent): Promise<void> {
    if (!CONSENT_EVENTS.has(event.name)) return;
    for (let delay = 100; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        await this.apply(event);
        break;
      } catch (e) {
        if (this.stopped) throw e;
        this.logger.error(
          { txId: event.txId, errorType: (e as Error).name, retryInMs: delay },
          'projection failed; retrying',
        );
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
    this.events.emit('applied', event);
  }

  /**
   * The grant (or setting) and the checkpoint move together, so a restart neither skips nor repeats. A grant
   * state the request that wrote it already applied (the usual case for this organisation's
   * own grants) is not written again: only the checkpoint moves.
   */
  private async apply(event: LedgerEvent): Promise<void> {
    const checkpoint = [CONSUMER, event.blockNumber, event.txIndex];
    if (event.name === EMERGENCY_SETTING_EVENT) {
      // For a patient this organisation holds (others' are not asked about); a replay (see
      // REPLAY_AGE_MS) as the ledger holds the setting now, so that a catch-up never passes
      // through an older choice.
      const delivered = event.payload as EmergencyAccessSetting;
      const setting =
        this.replayed(delivered.setAt) && (await this.patients.exists(delivered.patientId))
          ? await this.patients.ledgerEmergencyAccess(delivered.patientId)
          : delivered;
      await this.db.transaction(async (m) => {
        await this.patients.applyEmergencyAccess(setting, m);
        await m.query(CHECKPOINT, checkpoint);
      });
      return;
    }
    if (event.name === SETTING_EVENT) {
      await this.db.transaction(async (m) => {
        await this.settings.apply(event.payload as PatientKeyring, m);
        await m.query(CHECKPOINT, checkpoint);
      });
      return;
    }
    const delivered = event.payload as GrantRecord;
    await this.projection.settled(delivered.id);
    // A grant replayed from the past that is not here yet is written as the ledger holds it
    // now: written as it was, a grant since revoked would be ACTIVE here until its
    // revocation's block came round (seconds, in a long catch-up), and reads would be permitted
    // meanwhile. One already here (say the start-up reconciliation wrote it) is as safe to
    // write as any copy: a revoked row is never made ACTIVE again (ConsentProjection).
    const grant =
      event.name === 'ConsentGranted' &&
      this.replayed(delivered.createdAt) &&
      !(await this.projected(delivered.id))
        ? await this.ledger.evaluate<GrantRecord>('consent', 'GetConsent', [delivered.id])
        : delivered;
    if (this.projection.applied(grant)) {
      await this.db.query(CHECKPOINT, checkpoint);
      return;
    }
    await this.db.transaction(async (m) => {
      await this.projection.apply(grant, m);
      await m.query(CHECKPOINT, checkpoint);
    });
  }

  /** Whether the projection holds a row for the grant. */
  private async projected(grantId: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query('SELECT 1 FROM consent_grants WHERE id = $1', [
      grantId,
    ]);
    return rows.length > 0;
  }

  /** Whether an event committed at `at` (ledger time) is a replay (`replayAgeMs`). */
  private replayed(at: string): boolean {
    const ms = Date.parse(at);
    return !Number.isFinite(ms) || Date.now() - ms >= this.replayAgeMs;
  }
}
