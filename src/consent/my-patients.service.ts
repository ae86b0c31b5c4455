// myPatients: for a clinician, the patients whose active grants name them or their
// organisation, or to whom they hold a running emergency access, newest patient first, in
// keyset pages. The database proposes the page; only grants and emergencies that authenticate
// as the ledger's (GrantAuthenticity, the emergency row's MAC) put a patient on it, so a
// forged row lists no one (a page may then hold fewer than asked, never a wrong patient).
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from '../auth';
import { isUuid } from '../common/ids';
import { decodeCursor, encodeCursor, pageSize } from '../common/pagination';
import { PatientsService } from '../patients';
import { ConsentGrantEntity } from './consent-grant.entity';
import { toGrantModel } from './consent-projection';
import { EmergencyService } from './emergency.service';
import { GrantAuthenticity } from './grant-authenticity';
import { PatientAccessModel, PatientAccessPageModel } from './my-patients.model';
import { SignedConsentSettings } from './signed-consent-settings';

@Injectable()
export class MyPatientsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly authenticity: GrantAuthenticity,
    private readonly emergencies: EmergencyService,
    private readonly patients: PatientsService,
    private readonly signedConsent: SignedConsentSettings,
  ) {}

  async page(
    actor: Actor,
    first: number | null | undefined,
    after: string | null | undefined,
  ): Promise<PatientAccessPageModel> {
    const size = pageSize(first);
    const position = decodeCursor(after);
    const now = new Date();
    const org = actor.organizationId ?? '';
    // Creation times in whole milliseconds, as cursors carry them.
    const params: unknown[] = [actor.id, org, now];
    let before = '';
    if (position) {
      params.push(position.createdAt, position.id);
      before = `AND (date_trunc('milliseconds', p.created_at), p.id) < ($4, $5)`;
    }
    params.push(size + 1);
    const found: { id: string; created_at: Date }[] = await this.db.query(
      `SELECT p.id, date_trunc('milliseconds', p.created_at) AS created_at FROM patients p
       WHERE p.erased_at IS NULL
         AND (EXISTS (SELECT 1 FROM consent_grants g
                      WHERE g.patient_id = p.id::text AND g.status = 'ACTIVE'
                        AND ((g.grantee_type = 'CLINICIAN' AND g.grantee_id = $1)
                          OR (g.grantee_type = 'ORGANIZATION' AND g.grantee_id = $2))
                        AND g.valid_from <= $3 AND (g.valid_until IS NULL OR g.valid_until > $3))
           OR EXISTS (SELECT 1 FROM emergency_accesses e
                      WHERE e.patient_id = p.id AND e.clinician_id = $1
                        AND e.declared_at <= $3 AND e.expires_at > $3))
         ${before}
       ORDER BY 2 DESC, p.id DESC LIMIT $${params.length}`,
      params,
    );
    const page = found.slice(0, size);
    const ids = page.map((p) => p.id);
    // A fixed number of queries per page, whatever its size: each step reads the whole page.
    const grants = await this.activeGrants(actor, ids, now);
    const emergencies = await this.emergencies.activeFor(ids, actor.id, now);
    const listed = ids.filter((id) => grants.has(id) || emergencies.has(id));
    const profiles = await this.patients.profiles(listed);
    const items: PatientAccessModel[] = [];
    for (const id of listed) {
      const patient = profiles.get(id);
      if (!patient) continue;
      items.push({
        patient,
        grants: grants.get(id) ?? [],
        emergencyUntil: emergencies.get(id)?.expiresAt ?? null,
      });
    }
    const last = page[page.length - 1];
    return {
      items,
      nextCursor:
        found.length > size && last
          ? encodeCursor({ createdAt: new Date(last.created_at), id: last.id })
          : null,
    };
  }

  /**
   * Whether the clinician may see this patient's profile now: a believed grant in force to them
   * or their organisation, or a running emergency they declared (what puts a patient on
   * their myPatients list). Answers from the same checks as the list, for one patient.
   */
  async reaches(actor: Actor, patientId: string): Promise<boolean> {
    if (!isUuid(patientId)) return false;
    const now = new Date();
    if ((await this.activeGrants(actor, [patientId], now)).has(patientId)) return true;
    return (await this.emergencies.activeFor([patientId], actor.id, now)).has(patientId);
  }

  /** Per patient, the believed grants to the actor or their organisation in force at `now`. */
  private async activeGrants(actor: Actor, patientIds: string[], now: Date) {
    const byPatient = new Map<string, ReturnType<typeof toGrantModel>[]>();
    if (patientIds.length === 0) return byPatient;
    const rows = await this.db
      .getRepository(ConsentGrantEntity)
      .createQueryBuilder('g')
      .where('g.patient_id = ANY(:patientIds)', { patientIds })
      .andWhere(`g.status = 'ACTIVE'`)
      .andWhere(
        `((g.grantee_type = 'CLINICIAN' AND g.grantee_id = :actorId)
          OR (g.grantee_type = 'ORGANIZATION' AND g.grantee_id = :orgId))`,
        { actorId: actor.id, orgId: actor.organizationId ?? '' },
      )
      .orderBy('g.created_at', 'DESC')
      .addOrderBy('g.id')
      .getMany();
    const { grants } = this.authenticity.believed(rows);
    const believed = new Set(grants.map((g) => g.id));
    // As the policy decision point: a signed-only patient's unsigned grants give no access.
    const signedOnly = await this.signedConsent.signedOnly([
      ...new Set(grants.filter((g) => !g.patientSigned).map((g) => g.patientId)),
    ]);
    for (const row of rows) {
      if (!believed.has(row.id) || this.authenticity.revokedOnLedger(row.id)) continue;
      const grant = toGrantModel(row, now);
      if (!grant.patientSigned && signedOnly.has(row.patientId)) continue;
      if (grant.status !== 'ACTIVE' || grant.validFrom.getTime() > now.getTime()) continue;
      const list = byPatient.get(row.patientId) ?? [];
      list.push(grant);
      byPatient.set(row.patientId, list);
    }
    return byPatient;
  }
}
