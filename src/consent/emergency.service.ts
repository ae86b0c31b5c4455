// Break-glass: a clinician declares an emergency, with a reason, and reads the patient's
// records for 60 minutes unless the patient opted out. Every declaration and every read
// under it is in the patient's access log.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, MoreThan } from 'typeorm';
import { BadUserInputError, ForbiddenError, NotFoundError } from '../common/errors';
import { AccessLog } from '../audit/access-log';
import { PatientEntity } from '../patients';
import { EmergencyAccessEntity } from './consent-grant.entity';
import { EmergencyAccessModel } from './consent.model';

export const EMERGENCY_MINUTES = 60;
const MIN_REASON = 10;
const MAX_REASON = 500;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

@Injectable()
export class EmergencyService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly log: AccessLog,
  ) {}

  async declare(
    clinicianId: string,
    patientId: string,
    reason: string,
  ): Promise<EmergencyAccessModel> {
    const why = reason.trim();
    if (why.length < MIN_REASON || why.length > MAX_REASON) {
      throw new BadUserInputError(
        `reason must say why, in ${MIN_REASON}–${MAX_REASON} characters`,
        'reason',
      );
    }
    const patient = UUID.test(patientId)
      ? await this.db.getRepository(PatientEntity).findOneBy({ id: patientId })
      : null;
    if (!patient || patient.erasedAt) throw new NotFoundError('No patient with that id.');
    if (!patient.allowEmergencyAccess) {
      throw new ForbiddenError(
        'This patient has turned emergency access off; only their consent can grant access.',
      );
    }
    const declaredAt = new Date();
    const row: EmergencyAccessEntity = {
      id: randomUUID(),
      patientId,
      clinicianId,
      reason: why,
      declaredAt,
      expiresAt: new Date(declaredAt.getTime() + EMERGENCY_MINUTES * 60_000),
    };
    await this.db.getRepository(EmergencyAccessEntity).insert(row);
    // The declaration itself is in the patient's access log, before any read under it.
    await this.log.record({
      actorId: clinicianId,
      patientId,
      recordIds: [],
      action: 'READ',
      purpose: 'TREATMENT',
      decision: 'PERMIT',
      consentId: null,
      breakGlass: true,
      reason: why,
    });
    return { id: row.id, patientId, clinicianId, reason: why, expiresAt: row.expiresAt };
  }

  /** The clinician's live emergency access to the patient at `at`, if any (latest first). */
  async active(
    patientId: string,
    clinicianId: string,
    at: Date,
  ): Promise<EmergencyAccessEntity | null> {
    return this.db.getRepository(EmergencyAccessEntity).findOne({
      where: { patientId, clinicianId, expiresAt: MoreThan(at) },
      order: { expiresAt: 'DESC' },
    });
  }
}
