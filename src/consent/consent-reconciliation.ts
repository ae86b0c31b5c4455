// Runs the projection reconciler in the server: once before the API answers (so rows without
// a MAC, forged rows and undone revocations are repaired from the ledger at every start) and
// then every CONSENT_RECONCILE_INTERVAL_MS. Drift is counted and logged without PHI.
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
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { GrantAuthenticity } from './grant-authenticity';
import { driftCount, ProjectionReconciler, ReconcileReport } from './projection-reconciler';

/** Retry delay while the ledger cannot be listed at start-up. */
const RETRY_MS = 5_000;

@Injectable()
export class ConsentReconciliation implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ConsentReconciliation.name);
  private readonly reconciler: ProjectionReconciler;
  private timer?: NodeJS.Timeout;
  private running?: Promise<ReconcileReport | null>;
  /** When the projection last matched (or was made to match) the ledger. */
  lastReconciledAt: Date | null = null;

  constructor(
    @InjectDataSource() db: DataSource,
    @Inject(LEDGER) ledger: Ledger,
    authenticity: GrantAuthenticity,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly integrity: IntegrityMonitor,
  ) {
    this.reconciler = new ProjectionReconciler(db, ledger, authenticity);
  }

  async onApplicationBootstrap(): Promise<void> {
    const report = await this.reconcile();
    const every = this.config.consentReconcileMs;
    if (every > 0 || !report) {
      this.timer = setInterval(() => void this.reconcile(), every > 0 ? every : RETRY_MS);
      this.timer.unref();
    }
  }

  onApplicationShutdown(): Promise<unknown> | undefined {
    clearInterval(this.timer);
    return this.running;
  }

  /** One comparison and repair; null when the ledger or database could not be read. */
  reconcile(): Promise<ReconcileReport | null> {
    this.running ??= (async () => {
      try {
        const report = await this.reconciler.run({ repair: true });
        if (driftCount(report)) {
          this.integrity.report('projection_drift', 'consent projection repaired from the ledger', {
            missing: report.missing.length,
            extra: report.extra.length,
            changed: report.changed.length,
          });
        }
        this.lastReconciledAt = new Date();
        if (this.config.consentReconcileMs === 0) clearInterval(this.timer);
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
