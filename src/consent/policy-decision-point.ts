// The policy decision point: decides, for one request, which of a patient's records the
// caller may read, in one query over the consent projection — with the one rule of
// chaincode/src/policy.ts, never a copy of it. It answers the shape of question Immich's
// access repository does: "which of these may this caller touch?"
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  AccessRequest,
  Action,
  ConsentGrant,
  grantApplies,
  recordAllowed,
  Purpose,
  RecordFacts,
} from '@custodia/chaincode/policy';
import { hash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Actor, hasRole } from '../auth';
import { BoundedMap } from '../common/bounded-map';
import { isUuid } from '../common/ids';
import { preparedQuery } from '../database/prepared';
import { IntegrityMonitor } from '../observability';
import { ConsentGrantEntity } from './consent-grant.entity';
import { EmergencyService } from './emergency.service';
import { notePermitted } from './decision-scope';
import { GrantAuthenticity, ProjectedGrant } from './grant-authenticity';
import { GRANT_COLUMNS, grantColumns } from './projection-reconciler';
import { SettingRow, SignedConsentSettings } from './signed-consent-settings';

/** The rows trainingGrants reads: a study's ACTIVE grants of some patients ($1, $2). */
const SLIM_ROWS = `FROM consent_grants g
  LEFT JOIN signed_consent_settings s ON s.patient_id = g.patient_id
  WHERE g.grantee_type = 'STUDY' AND g.grantee_id = $1 AND g.status = 'ACTIVE'
    AND g.patient_id = ANY($2::text[])`;
/**
 * One of those rows as text: their checksum (null when there are none) is the MD5 of these,
 * in order of id, comma-joined. trainingGrants compares it between readings.
 */
const SLIM_ROW_TEXT = `g.id || ':' || g.patient_id || ':' || coalesce(encode(g.mac, 'hex'), '')
  || ':' || coalesce(encode(s.mac, 'hex'), '')`;

/** A grant row as trainingGrants reads it, with its patient's settings MAC (null: no row). */
interface SlimGrantRow {
  id: string;
  patientId: string;
  mac: Buffer | null;
  settingMac: Buffer | null;
  /** The checksum of all the rows read (see SLIM_ROW_TEXT), on each. */
  checksum: string;
}

/** The patient's signed-only setting, joined to each candidate grant (null: no row). */
interface JoinedSetting {
  settingRequireSigned: boolean | null;
  settingVersion: number | null;
  settingMac: Buffer | null;
}

/** A running emergency (break-glass) of the clinician on the patient. */
export interface EmergencyBasis {
  emergencyId: string;
  reason: string;
}

export type AccessBasis =
  | { kind: 'self' }
  /**
   * Grants that apply (first by id, as the rule takes them); for a READ, also the clinician's
   * running emergency when there is one, which admits what the grants' filters leave out.
   */
  | { kind: 'grants'; grants: ConsentGrant[]; emergency?: EmergencyBasis }
  | ({ kind: 'emergency' } & EmergencyBasis)
  | { kind: 'none' };

export interface Decision {
  basis: AccessBasis;
  request: AccessRequest;
}

/** How many (study, patients) pairs trainingGrants remembers: a few per node. */
const TRAINING_SELECTIONS = 256;

@Injectable()
export class PolicyDecisionPoint {
  /** Per study and set of patients asked about: the checksum of the rows and their grants. */
  private readonly lastTraining = new BoundedMap<
    string,
    { checksum: string | null; grants: readonly Readonly<ProjectedGrant>[] }
  >(TRAINING_SELECTIONS);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly emergencies: EmergencyService,
    private readonly authenticity: GrantAuthenticity,
    private readonly integrity: IntegrityMonitor,
    private readonly signedConsent: SignedConsentSettings,
  ) {}

  /**
   * On what basis (if any) `actor` may act on `patientId`'s records now: as the patient, under
   * grants that apply to who/what/why/when (whatever their record filters), or under a
   * declared emergency (READ only).
   */
  async decide(
    actor: Actor,
    ownPatientId: string | null,
    patientId: string,
    action: Action,
    purpose: Purpose,
  ): Promise<Decision> {
    const decision = await this.basisFor(actor, ownPatientId, patientId, action, purpose);
    // What @ConsentChecked operations may answer with (see ConsentCheckInterceptor).
    if (decision.basis.kind !== 'none') notePermitted(patientId);
    return decision;
  }

  private async basisFor(
    actor: Actor,
    ownPatientId: string | null,
    patientId: string,
    action: Action,
    purpose: Purpose,
  ): Promise<Decision> {
    const request: AccessRequest = {
      actor: { id: actor.id, organizationId: actor.organizationId ?? null },
      patientId,
      action,
      purpose,
      at: new Date(),
    };
    if (hasRole(actor, 'PATIENT') && ownPatientId === patientId) {
      return { basis: { kind: 'self' }, request };
    }
    // Patient ids are UUIDs: any other id names no one, whom no grant or emergency covers
    // (and a uuid column would refuse it as a database error).
    if (!hasRole(actor, 'CLINICIAN') || !isUuid(patientId)) {
      return { basis: { kind: 'none' }, request };
    }
    const candidates = await this.candidateGrants(request);
    const grants = candidates.grants
      .filter((g) => grantApplies(g, request))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // An emergency gives READ of everything for its hour (ARCHITECTURE section 5), also to a
    // clinician whose grants cover only part of the record: asked for only when one may be
    // running (the grants' query says so), or when no grant applies.
    const emergency =
      action === 'READ' && (candidates.emergencyOpen || !grants.length)
        ? await this.emergencies.active(patientId, actor.id, request.at as Date)
        : null;
    const during = emergency ? { emergencyId: emergency.id, reason: emergency.reason } : null;
    if (grants.length) {
      return {
        basis: { kind: 'grants', grants, ...(during ? { emergency: during } : {}) },
        request,
      };
    }
    if (during) return { basis: { kind: 'emergency', ...during }, request };
    return { basis: { kind: 'none' }, request };
  }

  /**
   * The first grant that permits reading this record, or undefined. The decision's grants
   * already apply to its request (who, what, why, when), so `permits` reduces to the rule's
   * record filters for each row.
   */
  permittingGrant(decision: Decision, record: RecordFacts): string | undefined {
    if (decision.basis.kind !== 'grants') return undefined;
    return decision.basis.grants.find((g) => recordAllowed(g, record))?.id;
  }

  /** Whether the decision admits this record at all. */
  admits(decision: Decision, record: RecordFacts): boolean {
    switch (decision.basis.kind) {
      case 'self':
      case 'emergency':
        return true;
      case 'grants':
        return (
          decision.basis.emergency !== undefined ||
          this.permittingGrant(decision, record) !== undefined
        );
      case 'none':
        return false;
    }
  }

  /**
   * A SQL condition over `records` (alias `alias`) equal to the grants' record filters, so
   * that a page holds exactly the permitted records; its values are appended to `params`
   * ($n placeholders). Rows are checked with the rule again after loading; this only keeps
   * pages full.
   */
  recordFilterSql(decision: Decision, alias: string, params: unknown[]): string | null {
    if (decision.basis.kind !== 'grants' || decision.basis.emergency) return null;
    return grantsRecordFilterSql(decision.basis.grants, alias, params);
  }

  /**
   * For each patient, the grant (first by id) under which `nodeId` may train on them for
   * `studyId` now — one query for all of them, decided by the rule. Patients without one
   * are absent from the map.
   */
  async trainingGrants(
    studyId: string,
    patientIds: readonly string[],
    nodeId: string,
  ): Promise<Map<string, string>> {
    const scopes = await this.trainingScopes(studyId, patientIds, nodeId);
    return new Map([...scopes].map(([patientId, grants]) => [patientId, grants[0].id]));
  }

  /**
   * For each patient, every grant under which `nodeId` may train on them for `studyId` now,
   * in order of id (never empty): their record filters (types, categories, restricted) say
   * which of the patient's records a node may learn from. Patients without one are absent.
   */
  async trainingScopes(
    studyId: string,
    patientIds: readonly string[],
    nodeId: string,
  ): Promise<Map<string, ConsentGrant[]>> {
    // A node asks about the same patients round after round: when the rows it would read are
    // those it read last time (their checksum, computed by the database), so is what they come
    // to, but for revocations learnt since (the ledger's, in memory) and the time (the rule).
    const key = `${studyId}\n${hash('sha256', [...patientIds].sort().join('\n'), 'base64')}`;
    const last = this.lastTraining.get(key);
    if (last) {
      const [{ checksum }]: { checksum: string | null }[] = await this.db.query(
        `SELECT md5(string_agg(${SLIM_ROW_TEXT}, ',' ORDER BY g.id)) AS checksum ${SLIM_ROWS}`,
        [studyId, patientIds],
      );
      if (checksum === last.checksum) {
        const standing = last.grants.filter(
          (g) => g.status !== 'ACTIVE' || !this.authenticity.revokedOnLedger(g.id),
        );
        return this.trainable(standing, studyId, nodeId);
      }
    }
    // Ids, patients and MACs only, each with the patient's settings MAC (and the checksum of
    // them all, in the same snapshot): rows verified before are recalled by their MAC
    // (GrantAuthenticity.recalled), and only the others read whole.
    const rows: SlimGrantRow[] = await this.db.query(
      `SELECT g.id, g.patient_id AS "patientId", g.mac, s.mac AS "settingMac",
         md5(string_agg(${SLIM_ROW_TEXT}, ',') OVER (ORDER BY g.id
           ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) AS checksum
       ${SLIM_ROWS} ORDER BY g.id`,
      [studyId, patientIds],
    );
    const { grants, unknown } = this.authenticity.recalled(rows);
    if (unknown.length) {
      const whole: ConsentGrantEntity[] = await this.db.query(
        `SELECT ${GRANT_COLUMNS} FROM consent_grants WHERE id = ANY($1::text[])`,
        [unknown],
      );
      const { grants: verified, forged } = this.authenticity.believed(whole);
      this.reportForged(forged);
      grants.push(...verified);
      // In the order of ids the rule's "first grant" goes by, as the query gave them.
      const rank = new Map(rows.map((r, i) => [r.id, i]));
      grants.sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
    }
    // Each unsigned grant's patient's setting, by the MAC read beside the grant (the column
    // it was joined by names the grant's own patient, which `recalled` checks); a patient
    // whose grant was read whole, and so has none here, is asked again.
    const joined = new Map(rows.map((r) => [r.patientId, r.settingMac]));
    const believed = await this.withoutUnsignedOfSignedOnly(grants, (unsigned) =>
      this.signedConsent.signedOnlyByMac(new Map(unsigned.map((p) => [p, joined.get(p)]))),
    );
    // Remembered only when every row was recalled: a row read whole may be forged, and its
    // report is due each time it is met.
    if (!unknown.length) {
      this.lastTraining.set(key, { checksum: rows[0]?.checksum ?? null, grants: believed });
    } else {
      this.lastTraining.delete(key);
    }
    return this.trainable(believed, studyId, nodeId);
  }

  /** Per patient, the grants among `grants` the rule lets `nodeId` train under, by id. */
  private trainable(
    grants: readonly ConsentGrant[],
    studyId: string,
    nodeId: string,
  ): Map<string, ConsentGrant[]> {
    const at = new Date();
    const found = new Map<string, ConsentGrant[]>();
    for (const grant of grants) {
      const request: AccessRequest = {
        actor: { id: nodeId, studyId },
        patientId: grant.patientId,
        action: 'TRAIN',
        purpose: 'RESEARCH',
        at,
      };
      if (!grantApplies(grant, request)) continue;
      const theirs = found.get(grant.patientId);
      if (theirs) theirs.push(grant);
      else found.set(grant.patientId, [grant]);
    }
    return found;
  }

  /**
   * One raw query on every clinician read: the grants naming this actor or their organisation,
   * each with the patient's signed-only setting (one row per patient, by its primary key), so
   * that judging unsigned grants costs no second round trip.
   */
  /**
   * The patient's active grants naming the actor or their organisation, and whether the actor
   * may have an emergency running on the patient (a hint, read beside them: the emergency
   * itself is checked by EmergencyService.active).
   */
  private async candidateGrants(
    request: AccessRequest,
  ): Promise<{ grants: ConsentGrant[]; emergencyOpen: boolean }> {
    const rows = await preparedQuery<
      ConsentGrantEntity & JoinedSetting & { emergencyOpen: boolean }
    >(
      this.db,
      `SELECT ${grantColumns('g')}, s.require_signed AS "settingRequireSigned",
              s.setting_version AS "settingVersion", s.mac AS "settingMac",
              EXISTS (SELECT 1 FROM emergency_accesses e WHERE e.patient_id = $1::text::uuid
                        AND e.clinician_id = $2 AND e.expires_at > now()) AS "emergencyOpen"
       FROM consent_grants g
       LEFT JOIN signed_consent_settings s ON s.patient_id = g.patient_id
       WHERE g.patient_id = $1 AND g.status = 'ACTIVE'
         AND ((g.grantee_type = 'CLINICIAN' AND g.grantee_id = $2)
           OR (g.grantee_type = 'ORGANIZATION' AND g.grantee_id = $3))`,
      [request.patientId, request.actor.id, request.actor.organizationId ?? ''],
    );
    const setting = rows.find((r) => r.settingMac !== null);
    const settings: SettingRow[] = setting
      ? [
          {
            patientId: setting.patientId,
            requireSigned: setting.settingRequireSigned!,
            settingVersion: setting.settingVersion!,
            mac: setting.settingMac!,
          },
        ]
      : [];
    return {
      grants: await this.believed(rows, settings),
      emergencyOpen: rows.some((r) => r.emergencyOpen),
    };
  }

  /**
   * Only rows the ledger stands behind take part in a decision: a forged or altered row is
   * ignored (and reported), a revoked grant restored from an old copy reads as revoked.
   */
  private async believed(
    rows: ConsentGrantEntity[],
    settings?: readonly SettingRow[],
  ): Promise<ConsentGrant[]> {
    const { grants, forged } = this.authenticity.believed(rows);
    this.reportForged(forged);
    return this.withoutUnsignedOfSignedOnly(grants, (unsigned) =>
      settings
        ? this.signedConsent.judge(settings, unsigned)
        : this.signedConsent.signedOnly(unsigned),
    );
  }

  private reportForged(forged: readonly ConsentGrantEntity[]): void {
    for (const row of forged) {
      this.integrity.report('consent_grant', 'consent grant row failed authentication; ignored', {
        grantId: row.id,
      });
    }
  }

  /**
   * A patient who accepts only signed grants has none unsigned: those from before they turned
   * it on are treated as absent (the chaincode refuses new ones). `signedOnlyOf` says which of
   * the patients with unsigned grants accept only signed ones; asked only when there are some.
   */
  private async withoutUnsignedOfSignedOnly<G extends Readonly<ProjectedGrant>>(
    grants: G[],
    signedOnlyOf: (unsigned: string[]) => Set<string> | Promise<Set<string>>,
  ): Promise<G[]> {
    const unsigned = [...new Set(grants.filter((g) => !g.patientSigned).map((g) => g.patientId))];
    if (!unsigned.length) return grants;
    const signedOnly = await signedOnlyOf(unsigned);
    return signedOnly.size
      ? grants.filter((g) => g.patientSigned || !signedOnly.has(g.patientId))
      : grants;
  }
}

/**
 * The grants' record filters (the rule's `recordAllowed`, OR-ed over the grants) as a SQL
 * condition over `records` aliased `alias`; values are appended to `params` ($n placeholders).
 * A second expression of the rule, kept equal to it by a property test.
 */
export function grantsRecordFilterSql(
  grants: readonly ConsentGrant[],
  alias: string,
  params: unknown[],
): string {
  const clauses = grants.map((g) => {
    const parts: string[] = [];
    if (g.resourceTypes.length) {
      params.push(g.resourceTypes);
      parts.push(`${alias}.resource_type = ANY($${params.length}::text[])`);
    }
    if (g.categories.length) {
      params.push(g.categories);
      parts.push(`${alias}.category = ANY($${params.length}::text[])`);
    }
    if (!g.includeRestricted) parts.push(`${alias}.sensitivity = 'NORMAL'`);
    return parts.length ? `(${parts.join(' AND ')})` : 'TRUE';
  });
  return clauses.length ? `(${clauses.join(' OR ')})` : 'FALSE';
}
