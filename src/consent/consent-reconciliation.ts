// Runs the projection reconciler in the server: once before the API answers (so rows without
// a MAC, forged rows and undone revocations are repaired from the ledger at every start) and
// then every CONSENT_RECONCILE_INTERVAL_MS; the signed-only settings with it (a deleted setting
// would let a signed-only patient's unsigned grants count). Drift is counted and logged
// without PHI.
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig, APP_CONFIG } from '../config';
import { Ledger, LEDGER, type LedgerEvent } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { RowAuthenticator } from '../records/crypto';
import { ConsentProjector } from './consent.projector';
import { GrantAuthenticity } from './grant-authenticity';
import { driftCount, ProjectionReconciler, ReconcileReport } from './projection-reconciler';
import { SettingsReconciler } from './settings-reconciler';
import { SignedConsentSettings } from './signed-consent-settings';

/** Retry delay while the ledger cannot be listed at start-up. */
const RETRY_MS = 5_000;
/**
 * How long the projector may go without applying an event before grants it has not delivered
 * are taken for drift: grants committed while this instance was down arrive in its catch-up,
 * which is no integrity problem, and must not be reported as one.
 */
const CATCH_UP_QUIET_MS = 2_000;

@Injectable()
export class ConsentReconciliation implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ConsentReconciliation.name);
  private readonly reconciler: ProjectionReconciler;
  private readonly settings: SettingsReconciler;
  private timer?: NodeJS.Timeout;
  private running?: Promise<ReconcileReport | null>;
  private stopped = false;

  constructor(
    @InjectDataSource() db: DataSource,
    @Inject(LEDGER) ledger: Ledger,
    authenticity: GrantAuthenticity,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly integrity: IntegrityMonitor,
    rows: RowAuthenticator,
    signedOnly: SignedConsentSettings,
    private readonly projector: ConsentProjector,
  ) {
    this.reconciler = new ProjectionReconciler(db, ledger, authenticity);
    // What the ledger holds is what decisions trust, whatever the rows say meanwhile.
    this.settings = new SettingsReconciler(db, ledger, rows, (keyrings) => {
      for (const k of keyrings) signedOnly.learn(k);
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.scheduleAfter(await this.reconcile({ afterStart: true }));
  }

  onApplicationShutdown(): Promise<unknown> | undefined {
    this.stopped = true;
    clearTimeout(this.timer);
    return this.running;
  }

  /** The next run: soon after a failure, else after the configured interval (if any). */
  private scheduleAfter(report: ReconcileReport | null): void {
    const delay = report ? this.config.consentReconcileMs : RETRY_MS;
    if (this.stopped || delay <= 0) return;
    this.timer = setTimeout(async () => this.scheduleAfter(await this.reconcile()), delay);
    this.timer.unref();
  }

  /**
   * The signed-only settings, compared and repaired after the grants. A failure is logged and
   * retried on the next run; it does not make the grants' reconciliation count as failed.
   */
  private async reconcileSettings(): Promise<void> {
    try {
      const settings = await this.settings.run({ repair: true });
      if (driftCount(settings)) {
        this.integrity.report('patient_setting', 'signed-only settings repaired from the ledger', {
          missing: settings.missing.length,
          extra: settings.extra.length,
          changed: settings.changed.length,
        });
      }
    } catch (e) {
      this.logger.warn(
        { errorType: (e as Error).name },
        'signed-only settings not reconciled with the ledger; will retry',
      );
    }
  }

  /**
   * Resolves once the projector has applied events naming each of these grants, or has applied
   * none for CATCH_UP_QUIET_MS (a grant it will never deliver is drift, reported after that).
   */
  private projectorDelivers(grantIds: string[]): Promise<void> {
    const pending = new Set(grantIds);
    if (!pending.size) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.projector.events.off('applied', onApplied);
        resolve();
      };
      const quiet = () => {
        clearTimeout(timer);
        timer = setTimeout(done, CATCH_UP_QUIET_MS);
        timer.unref();
      };
      const onApplied = (event: LedgerEvent) => {
        const id = (event.payload as { id?: unknown } | null)?.id;
        if (typeof id === 'string') pending.delete(id);
        if (pending.size === 0 || this.stopped) done();
        else quiet();
      };
      this.projector.events.on('applied', onApplied);
      quiet();
    });
  }

  /**
   * One comparison and repair; null when the ledger or database could not be read.
   * `afterStart`: the first, whose differences the projector's catch-up may still settle.
   */
  reconcile(options: { afterStart?: boolean } = {}): Promise<ReconcileReport | null> {
    this.running ??= (async () => {
      try {
        // At start-up, compared first: what differs only because the projector has not yet
        // delivered it (its catch-up on what was committed while this instance was down) is
        // left to it, and only what still differs once it has gone quiet is repaired and
        // reported as drift.
        if (options.afterStart) {
          const first = await this.reconciler.run({ repair: false });
          if (!driftCount(first) && !first.revocationsLost.length) {
            await this.reconcileSettings();
            return first;
          }
          await this.projectorDelivers([...first.missing, ...first.changed]);
        }
        const report = await this.reconciler.run({ repair: true });
        if (driftCount(report)) {
          this.integrity.report('projection_drift', 'consent projection repaired from the ledger', {
            missing: report.missing.length,
            extra: report.extra.length,
            changed: report.changed.length,
          });
        }
        if (report.revocationsLost.length) {
          this.integrity.report(
            'ledger_chain',
            'the ledger holds grants ACTIVE that this API saw revoked: the ledger lost their revocations (restored or rolled back); the revocations are kept',
            { grants: report.revocationsLost.length },
          );
        }
        await this.reconcileSettings();
        return report;
      } catch (e) {
        this.logger.warn(
          { errorType: (e as Error).name },
          'consent projection not reconciled with the ledger; will retry',
        );
        return null;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
