// Amendments: a new version of a record, written by its patient or by a clinician under a
// WRITE grant that covers the record as it was and as it becomes. The superseded version is
// kept as it was sealed and anchored (record_versions); the new one is sealed under labels
// carrying its version number, so no version's ciphertext can pass for another's, and is
// anchored like a creation (the ledger takes versions in order, so any earlier version still
// pending is anchored first). meta.versionId and meta.lastUpdated are the server's. A record
// keeps the category it is filed under (which grants' category scopes go by) unless its
// content's own category changes, or its patient files it anew.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from '../../auth';
import {
  BadUserInputError,
  ConflictError,
  ConsentRequiredError,
  ForbiddenError,
  NotFoundError,
} from '../../common/errors';
import { isUuid } from '../../common/ids';
import { DataKeyRing, PatientErasedError, RecordLabels } from '../crypto';
import {
  checkedCategory,
  deriveCategory,
  type FhirResource,
  confidentialityOf,
  stampServerFields,
  validatePatientResource,
} from '../fhir';
import { RecordAccess } from '../record-access';
import { AnchorLookup } from '../record-integrity';
import { RecordAnchoring } from '../record-anchoring';
import { RecordEntity } from '../record.entity';
import { RecordOpener } from '../record-opener';
import { archiveCurrentVersion, updateRecordRow } from '../record-rows';
import { sealedRow } from '../sealed-row';
import { RecordIndex } from '../search/record-index';

export interface Amended {
  row: RecordEntity;
  resource: Record<string, unknown>;
  anchor: AnchorLookup;
}

/**
 * The sensitivity a new version leaves a record with: its content's confidentiality label
 * (`confidentialityOf`) decides; without one, the record keeps its own.
 */
export function sensitivityAfter(
  current: RecordEntity['sensitivity'],
  labelled: 'restricted' | 'open' | null,
): RecordEntity['sensitivity'] {
  return labelled === 'restricted' || (labelled === null && current === 'RESTRICTED')
    ? 'RESTRICTED'
    : 'NORMAL';
}

/**
 * The category a new version leaves a record under, when none is asked for. A record its
 * patient filed apart from what its content says (a lab result filed as `psych`, say) stays
 * so: no amendment, by a grantee or by the patient, undoes that filing unasked. Otherwise the
 * category follows the content's (`own`), and stays as it was when the content now carries
 * none. `before`: the version replaced, opened (null if it did not open: the filing stands).
 */
export function keptFiling(
  filed: string | null,
  own: string | null,
  before: Record<string, unknown> | null,
): string | null {
  if (filed === null) return own;
  if (own === null || own === filed) return filed;
  const filedApart = !before || deriveCategory(before as FhirResource) !== filed;
  return filedApart ? filed : own;
}

@Injectable()
export class RecordAmendments {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly keys: DataKeyRing,
    private readonly index: RecordIndex,
    private readonly anchoring: RecordAnchoring,
    private readonly access: RecordAccess,
    private readonly opener: RecordOpener,
  ) {}

  /**
   * Stores a new version of the record. `category`, when given, files it anew: the patient
   * may choose any; a grantee only the one its content carries (as on creation).
   */
  async update(
    actor: Actor,
    id: string,
    input: unknown,
    expectedVersion: number,
    category?: string | null,
  ): Promise<Amended> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 1) {
      throw new BadUserInputError(
        'expectedVersion must be a version number (1 or more)',
        'expectedVersion',
      );
    }
    const notFound = new NotFoundError('No record with that id.');
    if (!isUuid(id)) throw notFound;
    const current = await this.db.getRepository(RecordEntity).findOneBy({ id });
    if (!current) throw notFound;
    const decision = await this.access.decide(actor, current.patientId, 'WRITE');
    if (!this.access.admits(decision, current)) {
      await this.access.logDenied(actor, decision, current.patientId, [id]);
      // Whoever may read the record learns that writing needs consent; anyone else, nothing.
      const read = await this.access.decide(actor, current.patientId, 'READ');
      if (!this.access.admits(read, current)) throw notFound;
      throw new ConsentRequiredError(
        'Amending this record needs a WRITE grant from the patient that covers it.',
      );
    }
    const resource = validatePatientResource(input, current.patientId, 'resource');
    if (resource.resourceType !== current.resourceType) {
      throw new BadUserInputError(
        `an amendment keeps the record's resource type (${current.resourceType})`,
        'resource.resourceType',
      );
    }
    // FHIR's update: a resource naming another id than the one updated is refused (400), not
    // silently renamed (a client that mixed up two records would amend the wrong one). A
    // Patient's id is the patient's, set by the server.
    const ownId = (input as { id?: unknown }).id;
    if (resource.resourceType !== 'Patient' && ownId !== undefined && ownId !== id) {
      throw new BadUserInputError(
        'resource.id names another record than the one amended (id); leave it out or give this id',
        'resource.id',
      );
    }
    const ownCategory = checkedCategory(deriveCategory(resource), 'resource.category');
    const asked = category !== undefined && category !== null;
    const filed = asked
      ? checkedCategory(category, 'category')
      : await this.keptCategory(current, ownCategory);
    // As on creation: a grantee relabelling a record would slip it past the category scope of
    // their own grant, and of every other grant the patient gave.
    if (asked && decision.basis.kind !== 'self' && ownCategory !== null && filed !== ownCategory) {
      await this.access.logDenied(actor, decision, current.patientId, [id]);
      throw new ForbiddenError(
        'Only the patient can file a record under another category than the one it carries; leave category out.',
      );
    }
    // The content's confidentiality label decides; without one, the record keeps its own. Only
    // the patient lifts a restriction (a lower label on a restricted record): a grantee who
    // could would open the record to every grant that leaves restricted records out.
    const labelled = confidentialityOf(resource);
    if (
      labelled === 'open' &&
      current.sensitivity === 'RESTRICTED' &&
      decision.basis.kind !== 'self'
    ) {
      await this.access.logDenied(actor, decision, current.patientId, [id]);
      throw new ForbiddenError(
        "Only the patient can lift a record's restriction; keep its confidentiality label (R).",
      );
    }
    const sensitivity = sensitivityAfter(current.sensitivity, labelled);
    const version = expectedVersion + 1;
    if (
      !this.access.admits(decision, {
        resourceType: current.resourceType,
        category: filed,
        sensitivity,
      })
    ) {
      await this.access.logDenied(actor, decision, current.patientId, [id]);
      throw new ConsentRequiredError(
        'Your grant does not cover the record as amended (its category or sensitivity); ask the patient for a grant that does.',
      );
    }
    if (current.version !== expectedVersion) throw stale(current.version, expectedVersion);
    const now = new Date();
    stampServerFields(resource, id, version, now);

    const row = await this.db.transaction(async (m) => {
      // The key before the record: the order erasure takes them in (see DataKeyRing.liveKey).
      const dek = await this.keys.liveKey(current.patientId, m).catch((e: unknown) => {
        throw e instanceof PatientErasedError ? notFound : e;
      });
      const [locked] = await m.query<{ version: number }[]>(
        'SELECT version FROM records WHERE id = $1 FOR UPDATE',
        [id],
      );
      if (!locked) throw notFound; // erased meanwhile
      if (locked.version !== expectedVersion) throw stale(locked.version, expectedVersion);
      await archiveCurrentVersion(m, id);
      const labels: RecordLabels = {
        recordId: id,
        patientId: current.patientId,
        version,
        resourceType: current.resourceType,
        category: filed,
        sensitivity,
      };
      const next = sealedRow(
        dek,
        labels,
        resource,
        { createdAt: current.createdAt, updatedAt: now },
        this.index.entryFor(dek, resource, current.createdAt),
      );
      await updateRecordRow(m, next);
      return next;
    });
    await this.access.logPermitted(actor, decision, row.patientId, [row]);
    return { row, resource, anchor: await this.anchorVersions(row) };
  }

  /** keptFiling, opening the version replaced only when the answer depends on it. */
  private async keptCategory(
    current: RecordEntity,
    ownCategory: string | null,
  ): Promise<string | null> {
    // Either way the record stays where it is filed: no need to open the version it replaces.
    if (current.category === null || ownCategory === null || ownCategory === current.category) {
      return keptFiling(current.category, ownCategory, null);
    }
    const before = await this.opener.open(current);
    return keptFiling(current.category, ownCategory, before?.resource ?? null);
  }

  /**
   * Anchors a new version of a record: earlier versions still pending first (the ledger takes
   * them in order), then this one.
   */
  async anchorVersions(row: RecordEntity): Promise<AnchorLookup> {
    const pending = await this.db.query<{ version: number; content_hash: string }[]>(
      `SELECT version, content_hash FROM record_versions
       WHERE record_id = $1 AND anchor_state = 'PENDING' ORDER BY version`,
      [row.id],
    );
    for (const p of pending) {
      const done = await this.anchoring.anchorNow({
        id: row.id,
        version: p.version,
        patientId: row.patientId,
        contentHash: p.content_hash,
      });
      if (!done) return { state: 'absent' };
    }
    const anchored = await this.anchoring.anchorNow({
      id: row.id,
      version: row.version,
      patientId: row.patientId,
      contentHash: row.contentHash,
    });
    if (!anchored) return { state: 'absent' };
    Object.assign(row, {
      anchorState: 'ANCHORED',
      anchoredHash: anchored.ledgerHash,
      ledgerTxId: anchored.txId,
    });
    return { state: 'anchored', contentHash: anchored.ledgerHash, txId: anchored.txId };
  }
}

function stale(current: number, expected: number): ConflictError {
  return new ConflictError(
    `The record is at version ${current}, not ${expected}: read it again and apply your change to the current version.`,
  );
}
