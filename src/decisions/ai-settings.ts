// Each patient's choice whether AI decisions may be made about them (default: allowed). The
// ledger holds it (SetAiDecisions) and RecordDecision enforces it; the database keeps a copy
// for a fast answer, authenticated (a MAC under a key derived from the KEK): a refusal altered
// there reads as a refusal still (failing closed), and one deleted is still refused by the
// ledger.
import { Inject, Injectable } from '@nestjs/common';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { RowAuthenticator } from '../records/crypto';
import { DecisionRepository, SettingRow } from './decision-repository';

@Injectable()
export class AiDecisionSettings {
  constructor(
    private readonly repo: DecisionRepository,
    private readonly rows: RowAuthenticator,
    private readonly integrity: IntegrityMonitor,
    @Inject(LEDGER) private readonly ledger: Ledger,
  ) {}

  async allows(patientId: string): Promise<boolean> {
    return this.judge(patientId, await this.repo.setting(patientId));
  }

  /** `allows` for many patients in one query, in their order. */
  async allowsAll(patientIds: readonly string[]): Promise<boolean[]> {
    const rows = await this.repo.settings(patientIds);
    return patientIds.map((id) => this.judge(id, rows.get(id) ?? null));
  }

  private judge(patientId: string, row: SettingRow | null): boolean {
    if (!row) return true;
    if (this.rows.verify('patient-settings/v1', fields(patientId, row.allow), row.mac)) {
      return row.allow;
    }
    this.integrity.report('patient_setting', 'AI decisions setting failed authentication', {
      patientId,
    });
    return false;
  }

  async set(patientId: string, allow: boolean, signature: string | null = null): Promise<void> {
    // The chaincode asks a signed-only patient's signature of a turning back on.
    await this.ledger.submit('decisions', 'SetAiDecisions', [
      JSON.stringify({ patientId, allow, ...(signature ? { signature } : {}) }),
    ]);
    await this.repo.putSetting({
      patientId,
      allow,
      mac: this.rows.mac('patient-settings/v1', fields(patientId, allow)),
    });
  }
}

/** Fields distinct from the emergency-access setting's, so one MAC never fits the other. */
function fields(patientId: string, allowAiDecisions: boolean) {
  return { patientId, allowAiDecisions };
}
