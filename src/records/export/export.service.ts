// exportMyData: the calling patient's records and grants as one FHIR R4 Bundle (collection).
// Each record is its current version, with `id` the record id (a Patient keeps the owner's id,
// which the other records' subject names) and meta.versionId/lastUpdated the server's; each
// grant is a Consent (consent/fhir-consent). A record's labels travel in meta where its
// content does not carry them (a restriction as FHIR's R security label, a category as a tag
// of Custodia's category system). Importing the bundle into another instance
// (importBundle) yields the same records: references between them are `Type/<record id>`,
// which the importer rewrites, and the grants' Consents are recognised and not imported.
// A record that fails to open is withheld and named beside the answer, as in `records`.
// Records are read and opened EXPORT_CHUNK at a time, so that only one chunk's ciphertexts and
// decryptions are in flight however many records a patient holds.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In } from 'typeorm';
import { AccessLog } from '../../audit';
import { Actor } from '../../auth';
import { ConsentRequiredError } from '../../common/errors';
import { isUuid } from '../../common/ids';
import {
  ConsentService,
  grantAsFhirConsent,
  PolicyDecisionPoint,
  RECORD_CATEGORY_SYSTEM,
} from '../../consent';
import {
  deriveCategory,
  FhirResource,
  labelledRestricted,
  RESTRICTED_LABEL,
  withConfidentiality,
} from '../fhir';
import { PatientsService } from '../../patients';
import { OpenRow, RecordOpener } from '../record-opener';
import { RecordEntity } from '../record.entity';

/** How many records are read and opened at a time. */
export const EXPORT_CHUNK = 200;

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
    const records = this.db.getRepository(RecordEntity);
    // The ids alone, in the bundle's order (oldest first); then their rows, a chunk at a time.
    const order = await records.find({
      select: { id: true },
      where: { patientId: own },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
    const readIds: string[] = [];
    const withheld: string[] = [];
    const recordEntries: { fullUrl: string; resource: Record<string, unknown> }[] = [];
    for (let start = 0; start < order.length; start += EXPORT_CHUNK) {
      const ids = order.slice(start, start + EXPORT_CHUNK).map((r) => r.id);
      const byId = new Map(
        (await records.findBy({ id: In(ids), patientId: own })).map((r) => [r.id, r]),
      );
      const chunk = ids.flatMap((id) => byId.get(id) ?? []);
      const opened = await Promise.all(chunk.map((r) => this.opener.open(r)));
      chunk.forEach((row, i) => {
        const o = opened[i];
        if (o === null) return void withheld.push(row.id);
        readIds.push(row.id);
        recordEntries.push({ fullUrl: `urn:uuid:${row.id}`, resource: exported(o) });
      });
    }
    const grants = await this.consents.list(actor, own, null);
    // Logged before the data leaves, as every read of records is.
    await this.log.record({
      actorId: actor.id,
      patientId: own,
      recordIds: readIds,
      action: 'READ',
      purpose: 'SELF',
      decision: 'PERMIT',
      consentId: null,
      breakGlass: false,
      reason: null,
    });
    const entry = [
      ...recordEntries,
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
      withheld,
    };
  }
}

function exported({ row, resource: opened }: OpenRow): Record<string, unknown> {
  // The record's labels go with it where its content does not already say them, so that an
  // import restores them: a restriction chosen at creation as FHIR's own R label, a category
  // chosen at creation as a tag of Custodia's category system (which the import reads, then
  // drops). Otherwise a restricted record would come back open to every grant.
  const resource = withRestrictionLabel(row, opened) as FhirResource;
  const meta: Record<string, unknown> = {
    ...((resource.meta as Record<string, unknown> | undefined) ?? {}),
    versionId: String(row.version),
    lastUpdated: row.updatedAt.toISOString(),
  };
  if (row.category !== null && row.category !== deriveCategory(resource)) {
    meta.tag = [...listOf(meta.tag), { system: RECORD_CATEGORY_SYSTEM, code: row.category }];
  }
  return {
    ...resource,
    id: resource.resourceType === 'Patient' ? resource.id : row.id,
    meta,
  };
}

/**
 * The resource as an export writes a record's restriction into it, where its content does not
 * say it already: FHIR's R label, in place of any lower one (N, say, would contradict it). An
 * import of this server's own export compares an entry with this too, to find it unchanged.
 */
export function withRestrictionLabel(
  row: Pick<RecordEntity, 'sensitivity'>,
  resource: Record<string, unknown>,
): Record<string, unknown> {
  if (row.sensitivity !== 'RESTRICTED' || labelledRestricted(resource as FhirResource)) {
    return resource;
  }
  const meta = (resource.meta as Record<string, unknown> | undefined) ?? {};
  return {
    ...resource,
    meta: { ...meta, security: withConfidentiality(meta.security, RESTRICTED_LABEL) },
  };
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
