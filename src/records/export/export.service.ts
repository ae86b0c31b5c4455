// exportMyData: the calling patient's records and grants as one FHIR R4 Bundle (collection).
// Each record is its current version, with `id` the record id (a Patient keeps the owner's id,
// which the other records' subject names) and meta.versionId/lastUpdated the server's; each
// grant is a Consent (consent/fhir-consent). Importing the bundle into another instance
// (importBundle) yields the same records: references between them are `Type/<record id>`,
// which the importer rewrites, and the grants' Consents are recognised and not imported.
// A record that fails to open is withheld and named beside the answer, as in `records`.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AccessLog } from '../../audit';
import { Actor } from '../../auth';
import { ConsentRequiredError } from '../../common/errors';
import { isUuid } from '../../common/ids';
import { ConsentService, grantAsFhirConsent, PolicyDecisionPoint } from '../../consent';
import { PatientsService } from '../../patients';
import { OpenRow, RecordOpener } from '../record-opener';
import { RecordEntity } from '../record.entity';

export interface ExportedBundle {
  bundle: Record<string, unknown>;
  /** Records that failed to open and were left out. */
  withheld: string[];
}

@Injectable()
export class RecordExportService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly patients: PatientsService,
    private readonly pdp: PolicyDecisionPoint,
    private readonly opener: RecordOpener,
    private readonly consents: ConsentService,
    private readonly log: AccessLog,
  ) {}

  async exportFor(actor: Actor): Promise<ExportedBundle> {
    const own = await this.patients.requirePatientId(actor);
    // The patient's own read, decided (and noted for the consent check) like any other.
    const decision = await this.pdp.decide(actor, own, own, 'READ', 'TREATMENT');
    if (decision.basis.kind !== 'self') {
      throw new ConsentRequiredError('Only the patient exports their own records.');
    }
    const rows = await this.db
      .getRepository(RecordEntity)
      .find({ where: { patientId: own }, order: { createdAt: 'ASC', id: 'ASC' } });
    const opened = await Promise.all(rows.map((r) => this.opener.open(r)));
    const readable = opened.filter((o): o is OpenRow => o !== null);
    const grants = await this.consents.list(actor, own, null);
    // Logged before the data leaves, as every read of records is.
    await this.log.record({
      actorId: actor.id,
      patientId: own,
      recordIds: readable.map((o) => o.row.id),
      action: 'READ',
      purpose: 'SELF',
      decision: 'PERMIT',
      consentId: null,
      breakGlass: false,
      reason: null,
    });
    const entry = [
      ...readable.map((o) => ({ fullUrl: `urn:uuid:${o.row.id}`, resource: exported(o) })),
      ...grants.map((g) => ({
        ...(isUuid(g.id) ? { fullUrl: `urn:uuid:${g.id}` } : {}),
        resource: grantAsFhirConsent(g),
      })),
    ];
    return {
      bundle: {
        resourceType: 'Bundle',
        type: 'collection',
        timestamp: new Date().toISOString(),
        ...(entry.length ? { entry } : {}),
      },
      withheld: rows.filter((_, i) => opened[i] === null).map((r) => r.id),
    };
  }
}

function exported({ row, resource }: OpenRow): Record<string, unknown> {
  const meta = {
    ...((resource.meta as Record<string, unknown> | undefined) ?? {}),
    versionId: String(row.version),
    lastUpdated: row.updatedAt.toISOString(),
  };
  return {
    ...resource,
    id: resource.resourceType === 'Patient' ? resource.id : row.id,
    meta,
  };
}
