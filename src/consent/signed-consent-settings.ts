// Which patients accept only grants they signed: a copy of the ledger's setting (its latest
// version wins, so replays and late events change nothing), MAC'd like the grants. The policy
// decision point treats an unsigned grant of such a patient as absent; a row whose MAC fails
// reads as signed-only (failing closed) and is reported.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { PatientKeyring } from '@custodia/chaincode';
import { DataSource, EntityManager } from 'typeorm';
import { IntegrityMonitor } from '../observability';
import { RowAuthenticator } from '../records/crypto';

interface SettingRow {
  patientId: string;
  requireSigned: boolean;
  settingVersion: number;
  mac: Buffer;
}

@Injectable()
export class SignedConsentSettings {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly rows: RowAuthenticator,
    private readonly integrity: IntegrityMonitor,
  ) {}

  private macOf(patientId: string, requireSigned: boolean, settingVersion: number): Buffer {
    return this.rows.mac('signed-consent/v1', { patientId, requireSigned, settingVersion });
  }

  /** Applies the ledger's setting for one patient; an older version never overwrites a newer. */
  async apply(ring: PatientKeyring, manager: EntityManager = this.db.manager): Promise<void> {
    if (!ring.settingVersion) return;
    await manager.query(
      `INSERT INTO signed_consent_settings
         (patient_id, require_signed, setting_version, ledger_tx_id, mac)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (patient_id) DO UPDATE SET require_signed = EXCLUDED.require_signed,
         setting_version = EXCLUDED.setting_version, ledger_tx_id = EXCLUDED.ledger_tx_id,
         mac = EXCLUDED.mac
       WHERE signed_consent_settings.setting_version < EXCLUDED.setting_version`,
      [
        ring.patientId,
        ring.requireSignedConsent,
        ring.settingVersion,
        ring.txId,
        this.macOf(ring.patientId, ring.requireSignedConsent, ring.settingVersion),
      ],
    );
  }

  /** The patients among `patientIds` who accept only grants they signed. */
  async signedOnly(patientIds: readonly string[]): Promise<Set<string>> {
    if (!patientIds.length) return new Set();
    const rows: SettingRow[] = await this.db.query(
      `SELECT patient_id AS "patientId", require_signed AS "requireSigned",
              setting_version AS "settingVersion", mac
       FROM signed_consent_settings WHERE patient_id = ANY($1::text[])`,
      [patientIds],
    );
    const out = new Set<string>();
    for (const r of rows) {
      const fields = {
        patientId: r.patientId,
        requireSigned: r.requireSigned,
        settingVersion: r.settingVersion,
      };
      if (this.rows.verify('signed-consent/v1', fields, r.mac)) {
        if (r.requireSigned) out.add(r.patientId);
      } else {
        this.integrity.report('patient_setting', 'signed-consent setting failed authentication', {
          patientId: r.patientId,
        });
        out.add(r.patientId);
      }
    }
    return out;
  }
}
