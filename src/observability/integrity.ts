// Where a tampered or unreadable row is reported: counted by kind in
// `custodia_integrity_failures_total{kind}` and logged at error level with ids only, never
// contents, so an operator sees that the database was altered without PHI reaching the log.
import { Injectable, Logger } from '@nestjs/common';
import { Metrics } from './metrics';

/** What failed its integrity check. Bounded, so the metric's label set stays small. */
export type IntegrityFailureKind =
  | 'consent_grant'
  | 'emergency'
  | 'identity_link'
  | 'patient_setting'
  | 'record'
  | 'access_log'
  | 'projection_drift'
  | 'ledger_chain'
  | 'ai_decision'
  | 'study';

@Injectable()
export class IntegrityMonitor {
  private readonly logger = new Logger('Integrity');

  constructor(private readonly metrics: Metrics) {}

  /**
   * Counts and logs one failure. `ids` must hold identifiers only (row ids, sequence numbers,
   * transaction ids): never a value read from the row.
   */
  report(
    kind: IntegrityFailureKind,
    what: string,
    ids: Record<string, string | number> = {},
  ): void {
    this.metrics.integrityFailures.inc({ kind });
    this.logger.error({ integrity: kind, ...ids }, what);
  }
}
