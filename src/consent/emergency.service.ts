// Break-glass: a clinician declares an emergency, with a reason, and reads the patient's
// records for 60 minutes unless the patient opted out. The declaration is written to the
// ledger first (so every read under it can be checked against the ledger), then kept here as
// a MAC'd row: a row forged or altered in the database opens nothing. The reason is sealed
// under the patient's data key, bound to the declaration, so erasure makes it unreadable.
// Every declaration and every read under it is in the patient's access log.
import { checkShownText } from '../common/shown-text';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { EmergencyRecord } from '@custodia/chaincode';
import { emergencyEndedBy, offPeriodsOf, type ChoicePeriod } from '@custodia/chaincode/policy';
import { randomUUID } from 'node:crypto';
import { DataSource, In, IsNull, MoreThan, Not } from 'typeorm';
import { BadUserInputError, ForbiddenError, NotFoundError } from '../common/errors';
import { AccessLog } from '../audit/access-log';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { PatientEntity, PatientsService } from '../patients';
import { DataKeyRing, openField, RowAuthenticator, sealField } from '../records/crypto';
import { EmergencyAccessEntity } from './consent-grant.entity';
import { EmergencyAccessModel } from './consent.model';
import { isUuid } from '../common/ids';
import { BoundedMap } from '../common/bounded-map';

const MIN_REASON = 10;
const MAX_REASON = 500;
const REASON_LABEL = 'emergency.reason';

/** A live emergency, its reason opened. */
export interface ActiveEmergency {
  id: string;
  patientId: string;
  clinicianId: string;
  reason: string;
  expiresAt: Date;
}

type Declaration = Pick<EmergencyAccessEntity, 'id' | 'patientId' | 'clinicianId' | 'expiresAt'>;

/** What a sealed reason is bound to: the declaration it belongs to. */
function reasonOwner(d: Declaration): string {
  return JSON.stringify([d.id, d.patientId, d.clinicianId, d.expiresAt.toISOString()]);
}

@Injectable()
export class EmergencyService implements OnApplicationBootstrap {
  private readonly logger = new Logger(EmergencyService.name);
  /** By patient, when the ledger last said their opt-outs began (see endedOnLedger). */
  private readonly knownOffPeriods = new BoundedMap<string, readonly ChoicePeriod[]>(10_000);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly log: AccessLog,
    private readonly keys: DataKeyRing,
    private readonly rows: RowAuthenticator,
    private readonly integrity: IntegrityMonitor,
    private readonly patients: PatientsService,
  ) {}

  /**
   * Seals the plaintext reasons of declarations made before reasons were sealed. Those
   * declarations were never on the ledger and carry no MAC, so they open nothing any more;
   * they ran out within an hour of being made anyway.
   */
  async onApplicationBootstrap(): Promise<void> {
    const repo = this.db.getRepository(EmergencyAccessEntity);
    for (const row of await repo.findBy({ reason: Not(IsNull()) })) {
      const dek = await this.keys.liveKey(row.patientId);
      await repo.update(
        { id: row.id },
        {
          reason: null,
          reasonSealed: sealField(dek.key, REASON_LABEL, reasonOwner(row), row.reason!),
          keyId: dek.id,
        },
      );
    }
  }

  async declare(
    clinicianId: string,
    patientId: string,
    reason: string,
  ): Promise<EmergencyAccessModel> {
    const why = reason.trim();
    // Words, not padding: ten dots or zero-width spaces say nothing to the patient who reads it.
    const said = why.match(/[\p{L}\p{N}]/gu)?.length ?? 0;
    // Counted in characters (code points), as the message says, not UTF-16 units.
    if ([...why].length > MAX_REASON || said < MIN_REASON) {
      throw new BadUserInputError(
        `reason must say why, in ${MIN_REASON}–${MAX_REASON} characters (at least ${MIN_REASON} of them letters or digits)`,
        'reason',
      );
    }
    // The patient reads it as written: an embedding or override could make it read otherwise.
    checkShownText(why, 'reason', 'reason', { singleLine: false });
    const patient = isUuid(patientId)
      ? await this.db.getRepository(PatientEntity).findOneBy({ id: patientId })
      : null;
    if (!patient || patient.erasedAt) throw new NotFoundError('No patient with that id.');
    // The declaration is in the patient's access log, before any read under it; a refusal
    // too, as any refused read is.
    const logged = (decision: 'PERMIT' | 'DENY', emergencyId?: string) =>
      this.log.record({
        actorId: clinicianId,
        patientId,
        recordIds: [],
        action: 'READ',
        purpose: 'TREATMENT',
        decision,
        consentId: null,
        breakGlass: true,
        reason: why,
        emergencyId,
      });
    const refused = async (e: Error): Promise<never> => {
      await logged('DENY');
      throw e;
    };
    const optedOut = () =>
      refused(
        new ForbiddenError(
          'This patient has turned emergency access off; only their consent can grant access.',
        ),
      );
    if (!this.patients.emergencyAccessAllowed(patient)) await optedOut();
    const { result: declared, txId } = await this.ledger
      .submit<EmergencyRecord>('consent', 'DeclareEmergency', [
        JSON.stringify({ id: randomUUID(), patientId, clinicianId }),
      ])
      // The ledger refuses a patient who opted out through another organisation.
      .catch((e: Error) => (e instanceof ForbiddenError ? optedOut() : Promise.reject(e)));
    const declaration: Declaration = {
      id: declared.id,
      patientId,
      clinicianId,
      expiresAt: new Date(declared.expiresAt),
    };
    const dek = await this.keys.liveKey(patientId);
    const row: EmergencyAccessEntity = {
      ...declaration,
      reason: null,
      reasonSealed: sealField(dek.key, REASON_LABEL, reasonOwner(declaration), why),
      keyId: dek.id,
      declaredAt: new Date(declared.declaredAt),
      ledgerTxId: txId,
      mac: null,
    };
    row.mac = this.rows.mac('emergency/v1', emergencyFields(row));
    await this.db.getRepository(EmergencyAccessEntity).insert(row);
    await logged('PERMIT', row.id);
    return { id: row.id, patientId, clinicianId, reason: why, expiresAt: row.expiresAt };
  }

  /**
   * The clinician's live emergency access to the patient at `at`, if any (latest first). Only
   * a row whose MAC holds and whose sealed reason opens is believed; any other is reported.
   */
  async active(patientId: string, clinicianId: string, at: Date): Promise<ActiveEmergency | null> {
    return (await this.activeFor([patientId], clinicianId, at)).get(patientId) ?? null;
  }

  /**
   * `active` for a page of patients, by patient id, in a fixed number of queries whatever its
   * size (the rows in one, the keys of their reasons in one more at most), and one ledger
   * read per patient with a live declaration.
   */
  async activeFor(
    patientIds: readonly string[],
    clinicianId: string,
    at: Date,
  ): Promise<Map<string, ActiveEmergency>> {
    const found = new Map<string, ActiveEmergency>();
    // Only a UUID can name a patient (and the column refuses anything else).
    const ids = patientIds.filter(isUuid);
    if (!ids.length) return found;
    const rows = await this.db.getRepository(EmergencyAccessEntity).find({
      where: { patientId: In(ids), clinicianId, expiresAt: MoreThan(at) },
      order: { expiresAt: 'DESC' },
    });
    if (!rows.length) return found;
    // A patient who turned emergency access off since the declaration ends it: the setting
    // is theirs to change at any time, and it holds from then on (as a revocation does).
    const patients = await this.db
      .getRepository(PatientEntity)
      .findBy({ id: In([...new Set(rows.map((row) => row.patientId))]) });
    const allowing = new Set(
      patients.filter((p) => this.patients.emergencyAccessAllowed(p)).map((p) => p.id),
    );
    // Turning it off ended every emergency running then: one declared before the patient last
    // changed the setting (so before they turned it back on) does not come back.
    const settingAt = new Map(patients.map((p) => [p.id, p.emergencySettingAt?.getTime() ?? 0]));
    await this.keys.preload(rows.flatMap((row) => (row.keyId ? [row.keyId] : [])));
    const live: EmergencyAccessEntity[] = [];
    for (const row of rows) {
      if (!allowing.has(row.patientId)) continue;
      if (!this.rows.verify('emergency/v1', emergencyFields(row), row.mac)) {
        this.integrity.report('emergency', 'emergency row failed authentication; ignored', {
          emergencyId: row.id,
        });
        continue;
      }
      if (row.declaredAt.getTime() > at.getTime()) continue;
      if (row.declaredAt.getTime() < settingAt.get(row.patientId)!) continue;
      live.push(row);
    }
    const ended = await this.endedOnLedger(live, at);
    for (const row of live) {
      // Each patient's latest live declaration that the ledger did not end and that opens wins.
      if (found.has(row.patientId) || ended.has(row.id)) continue;
      const reason = await this.openReason(row);
      if (reason !== null) found.set(row.patientId, { ...row, reason });
    }
    return found;
  }

  /**
   * The declarations among `rows` that the patient ended by turning emergency access off after
   * them, as the ledger says: its periods cannot be put back in the database (an older MAC'd
   * "allowed" row, or a cleared setting time, would otherwise revive an ended emergency). Only
   * asked when a live declaration exists, once per patient. When the ledger cannot answer,
   * its last answer for the patient decides (periods only grow), or, never asked, the
   * database's authenticated copy (already applied) alone.
   */
  private async endedOnLedger(
    rows: readonly EmergencyAccessEntity[],
    at: Date,
  ): Promise<Set<string>> {
    const ended = new Set<string>();
    const patientIds = [...new Set(rows.map((r) => r.patientId))];
    if (!patientIds.length) return ended;
    const offPeriods = new Map<string, readonly ChoicePeriod[]>();
    await Promise.all(
      patientIds.map(async (id) => {
        try {
          const periods = offPeriodsOf(await this.patients.ledgerEmergencyAccess(id));
          this.knownOffPeriods.set(id, periods);
          offPeriods.set(id, periods);
        } catch (e) {
          // Periods only ever grow: what the ledger said before still holds. Never asked
          // before, the database's authenticated copy (already applied) decides alone.
          const known = this.knownOffPeriods.get(id);
          if (known) offPeriods.set(id, known);
          this.logger.warn(
            { errorType: (e as Error).name },
            known
              ? 'emergency access setting not read from the ledger; its last answer decides'
              : "emergency access setting not read from the ledger; the database's copy decides",
          );
        }
      }),
    );
    for (const row of rows) {
      const periods = offPeriods.get(row.patientId) ?? [];
      if (emergencyEndedBy(periods, row.declaredAt.toISOString(), at.getTime())) ended.add(row.id);
    }
    return ended;
  }

  private async openReason(row: EmergencyAccessEntity): Promise<string | null> {
    try {
      if (!row.keyId || !row.reasonSealed) throw new TypeError('no sealed reason');
      const key = await this.keys.key(row.keyId, row.patientId);
      return openField(key, REASON_LABEL, reasonOwner(row), row.reasonSealed);
    } catch {
      this.integrity.report('emergency', 'emergency reason failed to open; ignored', {
        emergencyId: row.id,
      });
      return null;
    }
  }
}

/** What an emergency row's MAC covers: everything that decides access (not the reason). */
export function emergencyFields(
  row: Pick<EmergencyAccessEntity, 'id' | 'patientId' | 'clinicianId' | 'declaredAt' | 'expiresAt'>,
): Record<string, unknown> {
  return {
    id: row.id,
    patientId: row.patientId,
    clinicianId: row.clinicianId,
    declaredAt: row.declaredAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
  };
}
