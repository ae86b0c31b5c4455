import { checkShownText } from '../common/shown-text';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { EmergencyAccessSetting } from '@custodia/chaincode';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull, Not } from 'typeorm';
import { Actor } from '../auth';
import { BadUserInputError, ConflictError, InternalError, NotFoundError } from '../common/errors';
import { checkDetachedJws } from '../common/detached-jws';
import { AppConfig, InjectConfig } from '../config';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { DataKey, DataKeyRing, openField, RowAuthenticator, sealField } from '../records/crypto';
import { OrganizationEntity, PatientEntity, UserEntity } from './patient.entity';
import { PatientModel } from './patient.model';
import { isUuid } from '../common/ids';

const DISPLAY_NAME = 'patient.displayName';
const MAX_DISPLAY_NAME = 200;

@Injectable()
export class PatientsService implements OnApplicationBootstrap {
  private readonly logger = new Logger(PatientsService.name);
  /** subject → patient id; only links that exist are cached (they never change but by erasure). */
  private readonly links = new Map<string, string>();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly keys: DataKeyRing,
    @InjectConfig() private readonly config: AppConfig,
    private readonly rows: RowAuthenticator,
    private readonly integrity: IntegrityMonitor,
    @Inject(LEDGER) private readonly ledger: Ledger,
  ) {}

  /** This instance's own organisation always exists; links from before MACs get theirs. */
  async onApplicationBootstrap(): Promise<void> {
    await this.db
      .createQueryBuilder()
      .insert()
      .into(OrganizationEntity)
      .values({ id: this.config.orgId, name: this.config.orgId })
      .orIgnore()
      .execute();
    await this.authenticateLegacyLinks();
  }

  /**
   * The first start after the upgrade MACs the links that predate MACs (trusting them as they
   * are then). Once any link carries a MAC, a link without one is never believed again, so
   * clearing a MAC in the database does not get a rewritten link authenticated later.
   */
  private async authenticateLegacyLinks(): Promise<void> {
    const patients = this.db.getRepository(PatientEntity);
    if (!(await patients.existsBy({ settingsMac: Not(IsNull()) }))) {
      for (const p of await patients.findBy({ settingsMac: IsNull() })) {
        await patients.update(
          { id: p.id, allowEmergencyAccess: p.allowEmergencyAccess },
          { settingsMac: this.settingsMac(p.id, p.allowEmergencyAccess) },
        );
      }
    }
    const repo = this.db.getRepository(UserEntity);
    if (await repo.existsBy({ mac: Not(IsNull()) })) return;
    const legacy = await repo.findBy({ patientId: Not(IsNull()) });
    for (const user of legacy) {
      await repo.update(
        { subject: user.subject, patientId: user.patientId! },
        { mac: this.linkMac(user.subject, user.patientId!) },
      );
    }
    if (legacy.length) this.logger.warn({ links: legacy.length }, 'identity links authenticated');
  }

  private linkMac(subject: string, patientId: string): Buffer {
    return this.rows.mac('identity-link/v1', { subject, patientId });
  }

  private settingsMac(patientId: string, allowEmergencyAccess: boolean): Buffer {
    return this.rows.mac('patient-settings/v1', { patientId, allowEmergencyAccess });
  }

  /**
   * Whether the patient allows break-glass access, as they set it: a setting changed in the
   * database fails its MAC and reads as not allowed (failing closed), and is reported.
   */
  emergencyAccessAllowed(patient: PatientEntity): boolean {
    const fields = { patientId: patient.id, allowEmergencyAccess: patient.allowEmergencyAccess };
    if (this.rows.verify('patient-settings/v1', fields, patient.settingsMac)) {
      return patient.allowEmergencyAccess;
    }
    if (patient.allowEmergencyAccess) {
      this.integrity.report('patient_setting', 'emergency-access setting failed authentication', {
        patientId: patient.id,
      });
    }
    return false;
  }

  /**
   * The patient profile linked to the caller's identity, if any. A link whose MAC fails (an
   * account pointed at another patient in the database) is reported and not believed.
   */
  async patientIdOf(actor: Actor): Promise<string | null> {
    const cached = this.links.get(actor.id);
    if (cached) return cached;
    const user = await this.db.getRepository(UserEntity).findOneBy({ subject: actor.id });
    if (!user?.patientId) return null;
    if (
      !this.rows.verify(
        'identity-link/v1',
        { subject: user.subject, patientId: user.patientId },
        user.mac,
      )
    ) {
      this.integrity.report('identity_link', 'identity link failed authentication; ignored', {
        patientId: user.patientId,
      });
      return null;
    }
    this.links.set(actor.id, user.patientId);
    return user.patientId;
  }

  /** Drops a cached identity link (after erasure unlinked it). */
  forget(subject: string): void {
    this.links.delete(subject);
  }

  /** False for anything that is not a patient's id, malformed ids included. */
  async exists(patientId: string): Promise<boolean> {
    return isUuid(patientId) && this.db.getRepository(PatientEntity).existsBy({ id: patientId });
  }

  /** Whether the id names a patient who erased their data. */
  async isErased(patientId: string): Promise<boolean> {
    return (
      isUuid(patientId) &&
      this.db.getRepository(PatientEntity).existsBy({ id: patientId, erasedAt: Not(IsNull()) })
    );
  }

  /** Whether the id names a patient who has not erased their data. */
  async isLive(patientId: string): Promise<boolean> {
    return (
      isUuid(patientId) &&
      this.db.getRepository(PatientEntity).existsBy({ id: patientId, erasedAt: IsNull() })
    );
  }

  /** Like patientIdOf, for operations that need a registered patient. */
  async requirePatientId(actor: Actor): Promise<string> {
    const id = await this.patientIdOf(actor);
    if (!id) {
      throw new NotFoundError(
        'No patient profile is linked to this account yet; call registerPatient first.',
      );
    }
    return id;
  }

  /**
   * Creates the caller's patient profile, or returns (and updates) the existing one. `newId`
   * names a new profile (a seeded cohort's, the same from run to run) unless that id is taken.
   */
  async register(
    actor: Actor,
    displayName: string | null | undefined,
    organizationId: string | null | undefined,
    newId?: string,
  ): Promise<PatientModel> {
    const name =
      displayName === undefined || displayName === null ? undefined : checkName(displayName);
    const existingId = await this.patientIdOf(actor);
    if (existingId) return this.updateExisting(existingId, name, organizationId);
    const orgId = organizationId ?? actor.organizationId ?? this.config.orgId;
    const free =
      newId !== undefined &&
      isUuid(newId) &&
      !(await this.db.getRepository(PatientEntity).existsBy({ id: newId }));
    const id = free ? newId : randomUUID();
    // The ledger learns first that the patient registered here: only this organisation may
    // then bind their first device key (keys.RegisterPatientHome). Should the profile below
    // fail, the ledger names an id no one holds, and a retry takes another.
    await this.requireOrganization(this.db.manager, orgId);
    await this.ledger.submit('keys', 'RegisterPatientHome', [id]);
    try {
      await this.db.transaction(async (m) => {
        await m.getRepository(PatientEntity).insert({
          id,
          organizationId: orgId,
          allowEmergencyAccess: true,
          settingsMac: this.settingsMac(id, true),
        });
        if (name !== undefined) await this.storeName(m, id, name);
        // A subject whose earlier profile was erased keeps its row, unlinked: it is linked
        // to the new profile. A row still linked means a concurrent registration won (23505).
        const linked: unknown[] = await m.query(
          `INSERT INTO users (subject, patient_id, mac) VALUES ($1, $2, $3)
           ON CONFLICT (subject) DO UPDATE SET patient_id = EXCLUDED.patient_id,
             mac = EXCLUDED.mac, created_at = now()
           WHERE users.patient_id IS NULL
           RETURNING subject`,
          [actor.id, id, this.linkMac(actor.id, id)],
        );
        // Thrown to roll the new profile back; answered below like a unique violation.
        if (linked.length !== 1) throw new LinkedMeanwhile();
      });
      this.links.set(actor.id, id);
      return this.load(id);
    } catch (e) {
      // A concurrent call for the same subject registered first: answer with its profile.
      const concurrent = e instanceof LinkedMeanwhile || (e as { code?: string }).code === '23505';
      if (concurrent && (await this.patientIdOf(actor))) {
        return this.register(actor, displayName, organizationId, newId);
      }
      throw e;
    }
  }

  /**
   * Admits a patient whom another organisation registered, under the pseudonymous id the
   * ledger already knows them by, and links `subject` (their identity here) to it: consent is
   * global, so the grants they give through any organisation then govern the records this one
   * holds of them. Identity is matched out of band (the registration desk's job), so only an
   * operator calls this (`custodia admit-patient`). Idempotent for the same link.
   */
  async admit(subject: string, patientId: string): Promise<PatientModel> {
    if (!isUuid(patientId)) {
      throw new BadUserInputError('patientId must be a patient id (a UUID).', 'patientId');
    }
    const linked = await this.patientIdOf({ id: subject, roles: ['PATIENT'] });
    if (linked === patientId) return this.load(patientId);
    if (linked) {
      throw new ConflictError('This subject is already linked to another patient here.');
    }
    // A patient who opted out of emergency access through another organisation stays so here.
    const setting = await this.ledgerEmergencyAccess(patientId);
    const allow = setting.allow;
    try {
      await this.db.transaction(async (m) => {
        const patients = m.getRepository(PatientEntity);
        const existing = await patients.findOneBy({ id: patientId });
        if (existing?.erasedAt) {
          throw new ConflictError('That patient erased their data here; it cannot be admitted.');
        }
        if (!existing) {
          await patients.insert({
            id: patientId,
            organizationId: this.config.orgId,
            allowEmergencyAccess: allow,
            settingsMac: this.settingsMac(patientId, allow),
            emergencySettingAt: setting.setAt ? new Date(setting.setAt) : null,
          });
        }
        await m
          .getRepository(UserEntity)
          .insert({ subject, patientId, mac: this.linkMac(subject, patientId) });
      });
    } catch (e) {
      if ((e as { code?: string }).code === '23505') {
        throw new ConflictError('That patient is already linked to another subject here.');
      }
      throw e;
    }
    this.links.set(subject, patientId);
    return this.load(patientId);
  }

  async get(actor: Actor, id: string): Promise<PatientModel> {
    // The patient's own profile (for their own mutations); who else may see it is the
    // consent module's question (patient(id), myPatients).
    if ((await this.patientIdOf(actor)) !== id) throw new NotFoundError('No patient with that id.');
    return this.load(id);
  }

  /**
   * A patient's profile as a clinician with access sees it (myPatients): the caller has
   * established that access; this does not check it.
   */
  profile(id: string): Promise<PatientModel> {
    return this.load(id);
  }

  /**
   * `profile` for a page of patients, in a fixed number of queries whatever its size; answers
   * them by id. An id with no patient row, or an erased patient's, is left out.
   */
  async profiles(ids: readonly string[]): Promise<Map<string, PatientModel>> {
    const out = new Map<string, PatientModel>();
    if (!ids.length) return out;
    const rows = await this.db
      .getRepository(PatientEntity)
      .findBy({ id: In(ids.filter(isUuid)), erasedAt: IsNull() });
    const keys = await this.keys.existingLiveKeys(
      rows.filter((r) => r.displayNameSealed).map((r) => r.id),
    );
    for (const row of rows) out.set(row.id, await this.toModel(row, keys.get(row.id)));
    return out;
  }

  /**
   * The patient's choice, on the ledger first (where DeclareEmergency enforces it, through
   * every organisation, and whence the others' projectors copy it), then here.
   */
  async setEmergencyAccess(
    actor: Actor,
    allow: boolean,
    signature: string | null = null,
  ): Promise<PatientModel> {
    checkDetachedJws(signature, 'signature', 'choicePayload(EMERGENCY_ACCESS, true)');
    const id = await this.requirePatientId(actor);
    // Allowing what the ledger already allows changes nothing: a new setting time would end
    // the emergencies running now (EmergencyService.activeFor), which only turning it off does.
    if (allow && (await this.ledgerAllows(id))) {
      return { ...(await this.load(id)), allowEmergencyAccess: true };
    }
    const { result } = await this.ledger.submit<EmergencyAccessSetting>(
      'consent',
      'SetEmergencyAccess',
      // The chaincode asks a signed-only patient's signature of a turning back on.
      [JSON.stringify({ patientId: id, allow, ...(signature ? { signature } : {}) })],
    );
    await this.applyEmergencyAccess(result);
    // The caller's own committed setting, whatever a concurrent call wrote since.
    return { ...(await this.load(id)), allowEmergencyAccess: result.allow };
  }

  /** Whether the ledger allows emergency access to the patient (it does until they choose). */
  private async ledgerAllows(patientId: string): Promise<boolean> {
    try {
      return (await this.ledgerEmergencyAccess(patientId)).allow;
    } catch (e) {
      if (e instanceof NotFoundError) return true;
      throw e;
    }
  }

  /** The patient's emergency-access setting as the ledger holds it now. */
  ledgerEmergencyAccess(patientId: string): Promise<EmergencyAccessSetting> {
    return this.ledger.evaluate<EmergencyAccessSetting>('consent', 'GetEmergencyAccess', [
      patientId,
    ]);
  }

  /**
   * Copies a ledger emergency-access setting here (a patient of this organisation, not erased)
   * unless it, or a newer one, is here already: what setEmergencyAccess does after the ledger, and the
   * consent projector when the patient changed it through another organisation, in either
   * order.
   */
  async applyEmergencyAccess(
    setting: Pick<EmergencyAccessSetting, 'patientId' | 'allow' | 'setAt'>,
    manager: EntityManager = this.db.manager,
  ): Promise<void> {
    const { patientId, allow, setAt } = setting;
    await manager.query(
      `UPDATE patients SET allow_emergency_access = $2, settings_mac = $3,
         emergency_setting_at = $4
       WHERE id = $1 AND erased_at IS NULL
         AND (emergency_setting_at IS NULL OR emergency_setting_at < $4)`,
      [patientId, allow, this.settingsMac(patientId, allow), setAt],
    );
  }

  private async updateExisting(
    id: string,
    name: string | undefined,
    organizationId: string | null | undefined,
  ): Promise<PatientModel> {
    const current = await this.db.getRepository(PatientEntity).findOneByOrFail({ id });
    if (organizationId && organizationId !== current.organizationId) {
      throw new BadUserInputError(
        'This patient is already registered with another organisation; organizationId cannot change.',
        'organizationId',
      );
    }
    if (name !== undefined) await this.db.transaction((m) => this.storeName(m, id, name));
    return this.load(id);
  }

  private async requireOrganization(m: EntityManager, id: string): Promise<void> {
    if (!(await m.getRepository(OrganizationEntity).existsBy({ id }))) {
      throw new BadUserInputError(`Unknown organisation ${JSON.stringify(id)}.`, 'organizationId');
    }
  }

  private async storeName(m: EntityManager, id: string, name: string): Promise<void> {
    const dek = await this.keys.liveKey(id, m);
    await m
      .getRepository(PatientEntity)
      .update({ id }, { displayNameSealed: sealField(dek.key, DISPLAY_NAME, id, name) });
  }

  private async load(id: string): Promise<PatientModel> {
    return this.toModel(await this.db.getRepository(PatientEntity).findOneByOrFail({ id }));
  }

  /** `known`: the patient's live key when the caller read it already (a page's, in one go). */
  private async toModel(row: PatientEntity, known?: DataKey): Promise<PatientModel> {
    return {
      id: row.id,
      organizationId: row.organizationId,
      allowEmergencyAccess: this.emergencyAccessAllowed(row),
      createdAt: row.createdAt,
      displayName: row.displayNameSealed ? await this.openName(row, known) : null,
    };
  }

  private async openName(row: PatientEntity, known?: DataKey): Promise<string> {
    try {
      const dek = known ?? (await this.keys.liveKey(row.id));
      return openField(dek.key, DISPLAY_NAME, row.id, row.displayNameSealed!);
    } catch (e) {
      this.logger.error(
        { patientId: row.id, errorType: (e as Error).name },
        'display name unreadable',
      );
      throw new InternalError(
        'This patient profile failed its integrity check and was not returned. Report this to your administrator.',
      );
    }
  }
}

function checkName(value: string): string {
  const name = value.trim();
  if (name.length === 0 || name.length > MAX_DISPLAY_NAME) {
    throw new BadUserInputError(
      `displayName must be 1–${MAX_DISPLAY_NAME} characters`,
      'displayName',
    );
  }
  // Clinicians read it in their list of patients, as the patient wrote it.
  checkShownText(name, 'displayName', 'displayName', { singleLine: true });
  return name;
}

/** The subject's row was linked to another profile while this registration ran. */
class LinkedMeanwhile extends Error {}
