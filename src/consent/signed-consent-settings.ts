// Which patients accept only grants they signed: a copy of the ledger's setting (its latest
// version wins, so replays and late events change nothing), MAC'd like the grants. The policy
// decision point treats an unsigned grant of such a patient as absent; a row whose MAC fails
// reads as signed-only (failing closed) and is reported.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { PatientKeyring } from '@custodia/chaincode';
import { DataSource, EntityManager } from 'typeorm';
import { BoundedMap } from '../common/bounded-map';
import { IntegrityMonitor } from '../observability';
import { RowAuthenticator } from '../records/crypto';

export interface SettingRow {
  patientId: string;
  requireSigned: boolean;
  settingVersion: number;
  mac: Buffer;
}

/** The row's columns named as SettingRow's properties. */
export const SETTING_COLUMNS = `patient_id AS "patientId", require_signed AS "requireSigned",
  setting_version AS "settingVersion", mac`;

/** The MAC a settings row carries: over the patient, the setting and its ledger version. */
export function settingMac(
  rows: RowAuthenticator,
  s: Pick<SettingRow, 'patientId' | 'requireSigned' | 'settingVersion'>,
): Buffer {
  return rows.mac('signed-consent/v1', {
    patientId: s.patientId,
    requireSigned: s.requireSigned,
    settingVersion: s.settingVersion,
  });
}

/** Whether the row's MAC matches its fields (so a database writer did not make or alter it). */
export function settingAuthentic(rows: RowAuthenticator, r: SettingRow): boolean {
  return rows.verify(
    'signed-consent/v1',
    { patientId: r.patientId, requireSigned: r.requireSigned, settingVersion: r.settingVersion },
    r.mac,
  );
}

/** Writes the ledger's setting over whatever the row holds (apply keeps the newest only). */
export const SETTING_UPSERT = `INSERT INTO signed_consent_settings
    (patient_id, require_signed, setting_version, ledger_tx_id, mac)
  VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (patient_id) DO UPDATE SET require_signed = EXCLUDED.require_signed,
    setting_version = EXCLUDED.setting_version, ledger_tx_id = EXCLUDED.ledger_tx_id,
    mac = EXCLUDED.mac`;

/** Settings rows verified once and remembered, by patient (a few dozen bytes each). */
const VERIFIED_SETTINGS = 20_000;

@Injectable()
export class SignedConsentSettings {
  /** By patient, the MAC of the last row that verified and what it says. */
  private readonly verified = new BoundedMap<
    string,
    { mac: Buffer; requireSigned: boolean; settingVersion: number }
  >(VERIFIED_SETTINGS);
  /**
   * Each patient's setting as this process learnt it from the ledger (its events, this
   * instance's own writes, the reconciler's reading of every keyring at start-up and after):
   * whether signed-only, and the version. A row deleted, or put back at an older version with
   * a valid MAC, must not let a signed-only patient's unsigned grants count again until the
   * reconciler repairs it: the newer of this and the row decides. A few dozen bytes for each
   * patient who ever chose (most never do).
   */
  private readonly fromLedger = new Map<string, { version: number; requireSigned: boolean }>();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly rows: RowAuthenticator,
    private readonly integrity: IntegrityMonitor,
  ) {}

  /** What the ledger says of one patient's setting (see fromLedger); the newest version wins. */
  learn(ring: Pick<PatientKeyring, 'patientId' | 'requireSignedConsent' | 'settingVersion'>) {
    if (!ring.settingVersion) return;
    const known = this.fromLedger.get(ring.patientId);
    if (known && known.version >= ring.settingVersion) return;
    this.fromLedger.set(ring.patientId, {
      version: ring.settingVersion,
      requireSigned: ring.requireSignedConsent,
    });
  }

  /**
   * Whether the patient is signed-only, given their row as read (null: none) when it verified:
   * the newer of the row and what the ledger told this process. A row missing or older than
   * that is reported (the reconciler rewrites it).
   */
  private decide(
    patientId: string,
    row: { requireSigned: boolean; settingVersion: number } | null,
  ): boolean {
    const known = this.fromLedger.get(patientId);
    if (!known || (row && row.settingVersion >= known.version)) return row?.requireSigned ?? false;
    if (known.requireSigned !== (row?.requireSigned ?? false)) {
      this.integrity.report(
        'patient_setting',
        'signed-consent setting missing or older in the database than on the ledger',
        { patientId },
      );
    }
    return known.requireSigned;
  }

  /** Applies the ledger's setting for one patient; an older version never overwrites a newer. */
  async apply(ring: PatientKeyring, manager: EntityManager = this.db.manager): Promise<void> {
    if (!ring.settingVersion) return;
    this.learn(ring);
    await manager.query(
      `${SETTING_UPSERT} WHERE signed_consent_settings.setting_version < EXCLUDED.setting_version`,
      settingParams(this.rows, ring),
    );
  }

  /** The patients among `patientIds` who accept only grants they signed. */
  async signedOnly(patientIds: readonly string[]): Promise<Set<string>> {
    if (!patientIds.length) return new Set();
    const rows: SettingRow[] = await this.db.query(
      `SELECT ${SETTING_COLUMNS} FROM signed_consent_settings WHERE patient_id = ANY($1::text[])`,
      [patientIds],
    );
    return this.judge(rows, patientIds);
  }

  /**
   * As signedOnly, from each patient's settings MAC as the caller read it (null: no row;
   * undefined: not read). A MAC this process verified for the patient before stands for the
   * setting it covers; the other patients' rows are read and judged.
   */
  async signedOnlyByMac(
    settings: ReadonlyMap<string, Buffer | null | undefined>,
  ): Promise<Set<string>> {
    const out = new Set<string>();
    const unknown: string[] = [];
    for (const [patientId, mac] of settings) {
      if (mac === null) {
        if (this.decide(patientId, null)) out.add(patientId);
        continue;
      }
      const known = this.verified.get(patientId);
      if (!mac || !known || !known.mac.equals(mac)) unknown.push(patientId);
      else if (this.decide(patientId, known)) out.add(patientId);
    }
    for (const patientId of await this.signedOnly(unknown)) out.add(patientId);
    return out;
  }

  /**
   * The patients whose settings rows (read by the caller, e.g. beside their grants) say they
   * accept only signed grants; a row whose MAC fails counts as signed-only and is reported.
   * `asked`: the patients the caller read rows for, so that a missing row is judged too.
   */
  judge(rows: readonly SettingRow[], asked: readonly string[] = []): Set<string> {
    const out = new Set<string>();
    // A patient asked about whose row is missing: what the ledger told this process decides.
    const read = new Set(rows.map((r) => r.patientId));
    for (const p of asked) if (!read.has(p) && this.decide(p, null)) out.add(p);
    for (const r of rows) {
      if (settingAuthentic(this.rows, r)) {
        this.verified.set(r.patientId, {
          mac: Buffer.from(r.mac),
          requireSigned: r.requireSigned,
          settingVersion: r.settingVersion,
        });
        if (this.decide(r.patientId, r)) out.add(r.patientId);
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

/** The upsert's parameters for the ledger's setting of one patient. */
export function settingParams(rows: RowAuthenticator, ring: PatientKeyring): unknown[] {
  return [
    ring.patientId,
    ring.requireSignedConsent,
    ring.settingVersion,
    ring.txId,
    settingMac(rows, {
      patientId: ring.patientId,
      requireSigned: ring.requireSignedConsent,
      settingVersion: ring.settingVersion,
    }),
  ];
}
