// Compares the signed-only settings table with the keyrings the ledger holds and repairs it:
// a setting the table lacks (a deleted row lets unsigned grants count again), a row the ledger
// never wrote, and a row that differs from the ledger or whose MAC fails (a flip back to "not
// signed-only", or an older, correctly MAC'd copy put back) are each reported and rewritten
// from the ledger. Used by `custodia verify-ledger`, like the consent projection's reconciler.
import type { PatientKeyring } from '@custodia/chaincode';
import type { Ledger } from '../ledger';
import { everyPage } from '../ledger/every-page';
import { RowAuthenticator } from '../records/crypto';
import type { SqlRunner } from './consent-projection';
import type { ProjectionDrift } from './projection-reconciler';
import {
  SETTING_COLUMNS,
  SETTING_UPSERT,
  SettingRow,
  settingAuthentic,
  settingParams,
} from './signed-consent-settings';

export interface SettingsReport extends ProjectionDrift {
  /** Patients whose signed-only setting the ledger has ever set. */
  ledgerSettings: number;
  storedRows: number;
  repaired: boolean;
}

/** The drift between the ledger's settings (patients it ever set one for) and the rows. */
export function compareSettings(
  ledger: readonly PatientKeyring[],
  rows: readonly SettingRow[],
  authentic: (r: SettingRow) => boolean,
): ProjectionDrift {
  const byId = new Map(rows.map((r) => [r.patientId, r]));
  const drift: ProjectionDrift = { missing: [], extra: [], changed: [] };
  for (const ring of ledger) {
    if (!ring.settingVersion) continue; // never set: no row is written for it
    const row = byId.get(ring.patientId);
    byId.delete(ring.patientId);
    if (!row) drift.missing.push(ring.patientId);
    else if (!authentic(row)) drift.changed.push(ring.patientId);
    // Only the API MACs a row, from what the ledger said: an authentic row newer than this
    // read of the ledger is a setting committed since, not drift.
    else if (
      row.settingVersion < ring.settingVersion ||
      (row.settingVersion === ring.settingVersion &&
        row.requireSigned !== ring.requireSignedConsent)
    ) {
      drift.changed.push(ring.patientId);
    }
  }
  drift.extra.push(...byId.keys());
  return drift;
}

export class SettingsReconciler {
  constructor(
    /** Its query answers the rows, as a TypeORM DataSource's does. */
    private readonly db: SqlRunner,
    private readonly ledger: Pick<Ledger, 'evaluate'>,
    private readonly rows: RowAuthenticator,
    /** Told every keyring the ledger holds, each time it is read (what the API then trusts). */
    private readonly onLedger: (keyrings: readonly PatientKeyring[]) => void = () => undefined,
  ) {}

  /** Every patient keyring on the ledger, page by page. */
  ledgerKeyrings(): Promise<PatientKeyring[]> {
    return everyPage<PatientKeyring>(this.ledger, 'keys', 'ListPatientKeyrings', 'keyrings');
  }

  /**
   * Compares, then (with `repair`) rewrites every drifted setting from the ledger. The rows are
   * read before the ledger, so a setting committed in between shows as missing or changed (and
   * is compared again), never as extra.
   */
  async run(options: { repair: boolean }): Promise<SettingsReport> {
    const read = async (where = '', params: unknown[] = []) =>
      (await this.db.query(
        `SELECT ${SETTING_COLUMNS} FROM signed_consent_settings ${where}`,
        params,
      )) as SettingRow[];
    const authentic = (r: SettingRow) => settingAuthentic(this.rows, r);
    const rows = await read();
    const ledger = await this.ledgerKeyrings();
    this.onLedger(ledger);
    let drift = compareSettings(ledger, rows, authentic);
    // What the projector applied meanwhile is not drift: compare those rows again.
    const suspects = [...drift.missing, ...drift.changed];
    let fresh: SettingRow[] = [];
    if (suspects.length) {
      fresh = await read('WHERE patient_id = ANY($1::text[])', [suspects]);
      const again = compareSettings(
        ledger.filter((r) => suspects.includes(r.patientId)),
        fresh,
        authentic,
      );
      drift = { ...again, extra: drift.extra };
    }
    if (options.repair) {
      const byId = new Map(ledger.map((r) => [r.patientId, r]));
      const seen = new Map(fresh.map((r) => [r.patientId, r.mac]));
      for (const id of [...drift.missing, ...drift.changed]) {
        // Only over the row as compared: one the projector wrote meanwhile is newer than this.
        await this.db.query(`${SETTING_UPSERT} WHERE signed_consent_settings.mac = $6`, [
          ...settingParams(this.rows, byId.get(id)!),
          seen.get(id) ?? null,
        ]);
      }
      if (drift.extra.length) {
        await this.db.query(
          'DELETE FROM signed_consent_settings WHERE patient_id = ANY($1::text[])',
          [drift.extra],
        );
      }
    }
    return {
      ...drift,
      ledgerSettings: ledger.filter((r) => r.settingVersion > 0).length,
      storedRows: rows.length,
      repaired: options.repair,
    };
  }
}
