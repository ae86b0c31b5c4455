// Break-glass: a clinician declares an emergency, with a reason, and reads the patient's
// records for 60 minutes unless the patient opted out. The declaration is written to the
// ledger first (so every read under it can be checked against the ledger), then kept here as
// a MAC'd row: a row forged in the database opens nothing. Every declaration and every read
// under it is in the patient's access log.
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { EmergencyRecord } from '@custodia/chaincode';
import { randomUUID } from 'node:crypto';
import { DataSource, MoreThan } from 'typeorm';
import { BadUserInputError, ForbiddenError, NotFoundError } from '../common/errors';
import { AccessLog } from '../audit/access-log';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { PatientEntity } from '../patients';
import { RowAuthenticator } from '../records/crypto';
import { EmergencyAccessEntity } from './consent-grant.entity';
import { EmergencyAccessModel } from './consent.model';

const MIN_REASON = 10;
const MAX_REASON = 500;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

@Injectable()
export class EmergencyService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly log: AccessLog,
    private readonly rows: RowAuthenticator,
    private readonly integrity: IntegrityMonitor,
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
    const { result: declared, txId } = await this.ledger.submit<EmergencyRecord>(
      'consent',
      'DeclareEmergency',
      [JSON.stringify({ id: randomUUID(), patientId, clinicianId })],
    );
    const row: EmergencyAccessEntity = {
      id: declared.id,
      patientId,
      clinicianId,
      reason: why,
      declaredAt: new Date(declared.declaredAt),
      expiresAt: new Date(declared.expiresAt),
      ledgerTxId: txId,
      mac: null,
    };
    row.mac = this.rows.mac('emergency/v1', emergencyFields(row));
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
      emergencyId: row.id,
    });
    return { id: row.id, patientId, clinicianId, reason: why, expiresAt: row.expiresAt };
  }

  /**
   * The clinician's live emergency access to the patient at `at`, if any (latest first). Only
   * rows whose MAC holds count; a forged or altered one is reported and ignored.
   */
  async active(
    patientId: string,
    clinicianId: string,
    at: Date,
  ): Promise<EmergencyAccessEntity | null> {
    const candidates = await this.db.getRepository(EmergencyAccessEntity).find({
      where: { patientId, clinicianId, expiresAt: MoreThan(at) },
      order: { expiresAt: 'DESC' },
    });
    for (const row of candidates) {
      if (this.rows.verify('emergency/v1', emergencyFields(row), row.mac)) {
        if (row.declaredAt.getTime() <= at.getTime()) return row;
      } else {
        this.integrity.report('emergency', 'emergency row failed authentication; ignored', {
          emergencyId: row.id,
        });
      }
    }
    return null;
  }
}

/** What an emergency row's MAC covers: everything that decides access (not the reason). */
function emergencyFields(row: EmergencyAccessEntity): Record<string, unknown> {
  return {
    id: row.id,
    patientId: row.patientId,
    clinicianId: row.clinicianId,
    declaredAt: row.declaredAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
  };
}
