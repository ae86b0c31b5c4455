// Encrypted FHIR records: validated, sealed with the patient's data key under their labels,
// anchored on the ledger, listed in keyset pages, opened and checked against the ledger on
// the way out. Who may read what is decided by the policy decision point before any row is
// loaded, and every read is logged. A row that fails to open is withheld, never served.
import { Injectable } from '@nestjs/common';
import type { RecordFacts } from '@custodia/chaincode/policy';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Actor } from '../auth';
import {
  BadUserInputError,
  ConsentRequiredError,
  ForbiddenError,
  InternalError,
  LedgerUnavailableError,
  NotFoundError,
} from '../common/errors';
import { decodeCursor, encodeCursor, pageSize } from '../common/pagination';
import { preparedQuery } from '../database/prepared';
import { AccessLog } from '../audit';
import { Decision } from '../consent';
import { PatientsService } from '../patients';
import { DataKey, DataKeyRing, PatientErasedError, RecordLabels } from './crypto';
import { sealedRow } from './sealed-row';
import {
  checkedCategory,
  deriveCategory,
  FhirResource,
  confidentialityOf,
  stampServerFields,
  validatePatientResource,
} from './fhir';
import { LedgerAnchors } from './ledger-anchors';
import { RecordAnchoring } from './record-anchoring';
import { OpenRow, RecordOpener } from './record-opener';
import { AnchorLookup, integrityOf } from './record-integrity';
import { RecordEntity } from './record.entity';
import { TrainingRoundRef, trainingUseReason } from './training-use';
import {
  CreateRecordInput,
  HealthRecordModel,
  IntegrityReportModel,
  IntegrityStatus,
  RecordPageModel,
  SensitivityEnum,
} from './record.model';
import { isUuid } from '../common/ids';
import { RecordIndex, RecordSearch } from './search/record-index';
import {
  anchorQuestion,
  factsOf,
  readsAsOwner,
  RecordAccess,
  recordModel,
  servable,
  served,
} from './record-access';
import { CURRENT_COLUMNS, insertRecordRow, VersionRow, versionEntity } from './record-rows';

/** A page, and the ids of records on it that failed to open and were withheld. */
export interface ListedRecords extends RecordPageModel {
  withheld: string[];
}

/** A record opened for an AI decision: its id, version, labels and resource. */
export interface DecisionSourceRecord {
  id: string;
  version: number;
  facts: RecordFacts;
  resource: FhirResource;
}

export interface RecordFilter extends RecordSearch {
  resourceType?: string | null;
  category?: string | null;
  first?: number | null;
  after?: string | null;
}

/** A patient's records as a training node may use them (RecordsService.openForTraining). */
export interface TrainingRecords {
  recordIds: string[];
  resources: Record<string, unknown>[];
  /** The labels of each record read, in the same order. */
  facts: RecordFacts[];
  /** The labels of the records the node's grants keep back: nothing of them was read. */
  withheld: RecordFacts[];
}

@Injectable()
export class RecordsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly patients: PatientsService,
    private readonly keys: DataKeyRing,
    private readonly anchoring: RecordAnchoring,
    private readonly anchors: LedgerAnchors,
    private readonly access: RecordAccess,
    private readonly log: AccessLog,
    private readonly opener: RecordOpener,
    private readonly index: RecordIndex,
  ) {}

  async create(actor: Actor, input: CreateRecordInput): Promise<HealthRecordModel> {
    const { patientId: own, decision } = await this.access.decideWrite(
      actor,
      input.patientId,
      'input.patientId',
    );
    const resource = validatePatientResource(input.resource, own);
    const ownCategory = deriveCategory(resource);
    const category = checkedCategory(input.category ?? ownCategory, 'input.category');
    // Only the patient files a record under another category than the one it carries: a
    // grantee relabelling (say a lab result as vital-signs) would slip it past the category
    // scope of their own grant, and of every other grant the patient gave.
    if (decision.basis.kind !== 'self' && ownCategory !== null && category !== ownCategory) {
      await this.access.logDenied(actor, decision, own, []);
      throw new ForbiddenError(
        'Only the patient can file a record under another category than the one it carries; leave category out.',
      );
    }
    // The sensitivity asked for and the content's own confidentiality label must agree.
    const labelled = confidentialityOf(resource);
    if (
      (labelled === 'restricted' && input.sensitivity === SensitivityEnum.NORMAL) ||
      (labelled === 'open' && input.sensitivity === SensitivityEnum.RESTRICTED)
    ) {
      throw new BadUserInputError(
        `sensitivity ${input.sensitivity} contradicts the resource's own confidentiality label (meta.security); leave one of them out`,
        'sensitivity',
      );
    }
    const restricted =
      labelled === 'restricted' || input.sensitivity === SensitivityEnum.RESTRICTED;
    const sensitivity = restricted ? 'RESTRICTED' : 'NORMAL';
    // Under grants, only a record they cover: the grant's types, categories, restriction.
    if (
      !this.access.admits(decision, { resourceType: resource.resourceType, category, sensitivity })
    ) {
      await this.access.logDenied(actor, decision, own, []);
      throw new ConsentRequiredError(
        'Your grants do not cover this record (its type, category or sensitivity); ask the patient for a WRITE grant that does.',
      );
    }
    const now = new Date();
    const recordId = randomUUID();
    stampServerFields(resource, recordId, 1, now);
    const seal = (dek: DataKey): RecordEntity => {
      const labels: RecordLabels = {
        recordId,
        patientId: own,
        version: 1,
        resourceType: resource.resourceType,
        category,
        sensitivity,
      };
      return sealedRow(
        dek,
        labels,
        resource,
        { createdAt: now, updatedAt: now },
        this.index.entryFor(dek, resource, now),
      );
    };
    // The patient's live key, once this process knows it, makes the write one INSERT; the
    // first record of a patient creates the key and the row in one transaction.
    // Either way the row commits only while the patient is not erased (see DataKeyRing):
    // another request or process erasing them meanwhile leaves nothing stored.
    const known = this.keys.knownLiveKey(own);
    let row: RecordEntity;
    try {
      if (known) {
        row = seal(known);
        await insertRecordRow(this.db, row);
      } else {
        row = await this.db.transaction(async (m) => {
          const entity = seal(await this.keys.liveKey(own, m));
          await insertRecordRow(m, entity);
          return entity;
        });
      }
    } catch (e) {
      // This process still took them for a live patient: it forgets them.
      if (e instanceof PatientErasedError) {
        this.keys.forgetPatient(own);
        if (decision.basis.kind === 'self') this.patients.forget(actor.id);
      }
      throw e;
    }
    // A clinician's write is in the patient's access log, citing the grant, before it answers.
    if (decision.basis.kind === 'grants') {
      await this.access.logPermitted(actor, decision, own, [row]);
    }
    // Saved first, anchored second: if the ledger is down the record stays PENDING and the
    // outbox anchors it later; the caller still gets their record.
    const anchored = await this.anchoring.anchorNow({
      id: row.id,
      version: row.version,
      patientId: row.patientId,
      contentHash: row.contentHash,
    });
    if (anchored) {
      Object.assign(row, {
        anchorState: 'ANCHORED',
        anchoredHash: anchored.ledgerHash,
        ledgerTxId: anchored.txId,
      });
    }
    const anchor: AnchorLookup = anchored
      ? { state: 'anchored', contentHash: anchored.ledgerHash, txId: anchored.txId }
      : { state: 'absent' };
    return recordModel({ row, resource, hash: row.contentHash }, anchor);
  }

  /**
   * Checks the stored record against its anchor on the ledger, exactly as `record` judges
   * its integrity (same anchors, same rule), and reports both hashes. Of a record rolled back
   * (stored at an older version than the ledger's latest), the ledger's side is its latest
   * anchor, the one storage should hold. A record that fails its check is reported to its
   * patient; to a grantee it is NOT_FOUND, as in `record`.
   */
  async verify(actor: Actor, id: string): Promise<IntegrityReportModel> {
    const { row, decision } = await this.readableRow(actor, id);
    const opened = await this.opener.open(row);
    // One that does not open (ciphertext, labels or key altered) is reported, not refused:
    // what storage claims beside what the ledger anchored, MISMATCH.
    const open = opened ?? { row, resource: {}, hash: row.contentHash };
    const anchor = await this.anchors.lookupOne(anchorQuestion(open));
    if (opened ? !servable(decision, anchor) : !readsAsOwner(decision)) {
      throw await this.absentToGrantee(actor, decision, row);
    }
    await this.access.logPermitted(actor, decision, row.patientId, [row]);
    const onLedger = await this.ledgerSide(open, anchor);
    return {
      recordId: row.id,
      status: opened ? integrityOf(open.hash, anchor, row.anchorState) : IntegrityStatus.MISMATCH,
      storedHash: open.hash,
      storedVersion: row.version,
      ledgerHash: onLedger?.contentHash ?? null,
      ledgerTxId: onLedger?.txId ?? null,
      ledgerVersion: onLedger?.version ?? null,
    };
  }

  /**
   * The ledger's anchor to set beside the stored record: that of its version, or, when the
   * ledger holds a later one (rolled back), the latest; null when the ledger holds none.
   */
  private async ledgerSide(
    open: OpenRow,
    anchor: AnchorLookup,
  ): Promise<{ contentHash: string; txId: string; version: number } | null> {
    const unavailable = () =>
      new LedgerUnavailableError(
        'The ledger is unavailable, so the record cannot be checked against it. Try again shortly.',
      );
    switch (anchor.state) {
      case 'unknown':
        throw unavailable();
      case 'absent':
        return null;
      case 'anchored':
        return { ...anchor, version: open.row.version };
      case 'superseded': {
        const latest = await this.anchors.lookupOne({
          ...anchorQuestion(open),
          version: anchor.latestVersion,
          current: false,
        });
        if (latest.state === 'unknown') throw unavailable();
        if (latest.state !== 'anchored') return null;
        return { ...latest, version: anchor.latestVersion };
      }
    }
  }

  async list(actor: Actor, patientId: string, filter: RecordFilter): Promise<ListedRecords> {
    if (filter.since && filter.until && filter.since.getTime() > filter.until.getTime()) {
      throw new BadUserInputError(
        'since is after until: the window is since ≤ effectiveAt < until',
        'since',
      );
    }
    const size = pageSize(filter.first);
    const after = decodeCursor(filter.after);
    const decision = await this.access.decideRead(actor, patientId);
    // Only what the grants permit is loaded: one query for the whole page, none per record.
    const params: unknown[] = [patientId];
    const where = ['r.patient_id = $1'];
    if (filter.resourceType) {
      params.push(filter.resourceType);
      where.push(`r.resource_type = $${params.length}`);
    }
    if (filter.category) {
      // A label is a code without its system: a token `system|code` asks for its code, and
      // anything that can be no label is said to be so rather than answered with nothing.
      const bar = filter.category.lastIndexOf('|');
      params.push(checkedCategory(filter.category.slice(bar + 1), 'category'));
      where.push(`r.category = $${params.length}`);
    }
    if (after) {
      params.push(after.createdAt, after.id);
      where.push(`(r.created_at, r.id) < ($${params.length - 1}, $${params.length})`);
    }
    const search = await this.index.searchSql(patientId, filter, 'r', params);
    where.push(...search.where);
    const permitted = this.access.filterSql(decision, 'r', params);
    if (permitted) where.push(permitted);
    params.push(size + 1);
    const text = `SELECT ${CURRENT_COLUMNS} FROM records r WHERE ${where.join(' AND ')}
       ORDER BY r.created_at DESC, r.id DESC LIMIT $${params.length}`;
    const found = await preparedQuery<VersionRow>(this.db, text, params);
    const rows = found.map(versionEntity).filter((r) => this.access.admits(decision, r));
    const page = rows.slice(0, size);
    const opened = await Promise.all(page.map((r) => this.opener.open(r)));
    const readable = opened.filter(
      (o): o is OpenRow =>
        o !== null && (!search.matches || search.matches(o.resource, o.row.createdAt)),
    );
    const anchors = await this.anchors.lookup(readable.map(anchorQuestion));
    const owner = readsAsOwner(decision);
    const items = served(decision, readable, anchors);
    // Only what was returned is logged as read; withheld records were not.
    await this.access.logPermitted(
      actor,
      decision,
      patientId,
      items.map(({ o }) => o.row),
    );
    const last = page[page.length - 1];
    return {
      items: items.map(({ o, anchor }) => recordModel(o, anchor)),
      nextCursor: rows.length > size && last ? encodeCursor(last) : null,
      // Named to the patient only; to a grantee a withheld record is as absent.
      withheld: owner ? page.filter((_, i) => opened[i] === null).map((r) => r.id) : [],
    };
  }

  /**
   * The patients of an organisation who are not erased, each with a fingerprint of their
   * records: it changes when a record is added, amended or deleted (the patient's
   * `records_version`, which triggers on `records` move), so a training node knows whose
   * examples to build again. A node asks the decision point for these patients' grants next,
   * by the grants' patient index: a join of patients and grants was planned on statistics from
   * before a cohort's fresh grants existed and looped over every patient per grant (0.6 s per
   * node at 2,000), and the study's grants alone would make every node read all of them.
   */
  async trainingFingerprints(organizationId: string): Promise<Map<string, string>> {
    const rows: { id: string; records_version: string }[] = await this.db.query(
      `SELECT id::text AS id, records_version FROM patients
       WHERE organization_id = $1 AND erased_at IS NULL`,
      [organizationId],
    );
    return new Map(rows.map((r) => [r.id, r.records_version]));
  }

  /**
   * The decrypted records of patients a training node may train on, in order of creation,
   * read in chunks whose rows are opened concurrently: of each patient only those `admits`
   * lets through (their TRAIN grants' record filters), by their labels before anything is
   * decrypted, and the labels of those it kept back. Logging their use is the caller's
   * (`logTrainingUse`, every round). An unreadable record is left out (and reported).
   */
  async openForTraining(
    patientIds: readonly string[],
    admits: (patientId: string, facts: RecordFacts) => boolean,
  ): Promise<Map<string, TrainingRecords>> {
    const out = new Map<string, TrainingRecords>();
    const entryOf = (patientId: string) => {
      let entry = out.get(patientId);
      if (!entry) {
        entry = { recordIds: [], resources: [], facts: [], withheld: [] };
        out.set(patientId, entry);
      }
      return entry;
    };
    for (let i = 0; i < patientIds.length; i += TRAINING_CHUNK) {
      const found: VersionRow[] = await this.db.query(
        `SELECT ${CURRENT_COLUMNS} FROM records r WHERE r.patient_id = ANY($1::uuid[])
         ORDER BY r.patient_id, r.created_at, r.id`,
        [patientIds.slice(i, i + TRAINING_CHUNK)],
      );
      const rows = found.map(versionEntity).filter((row) => {
        const facts = factsOf(row);
        if (admits(row.patientId, facts)) return true;
        entryOf(row.patientId).withheld.push(facts);
        return false;
      });
      const opened = await Promise.all(rows.map((row) => this.opener.open(row)));
      for (const o of opened) {
        if (!o) continue;
        const entry = entryOf(o.row.patientId);
        entry.recordIds.push(o.row.id);
        entry.resources.push(o.resource);
        entry.facts.push(factsOf(o.row));
      }
    }
    return out;
  }

  /**
   * One TRAIN event per use in the patient's access log (a patient's records under each of
   * their grants that admitted some), the records a node used this round,
   * appended as one group; resolves once they are all durable. The event's reason names the
   * study, run and round (`trainingUseReason`): sealed under each patient's data key like any
   * reason, it is theirs to read and gone with their erasure.
   */
  async logTrainingUse(
    nodeId: string,
    round: TrainingRoundRef,
    uses: readonly { patientId: string; recordIds: string[]; grantId: string }[],
  ): Promise<void> {
    const reason = trainingUseReason(round);
    await this.log.recordGroup(
      uses.map((u) => ({
        actorId: nodeId,
        patientId: u.patientId,
        recordIds: u.recordIds,
        action: 'TRAIN',
        purpose: 'RESEARCH',
        decision: 'PERMIT',
        consentId: u.grantId,
        breakGlass: false,
        reason,
      })),
    );
  }

  /**
   * Every record of the patient of the given resource types that `admits` lets through (by its
   * labels, before anything is decrypted), opened, for an AI decision about them (decisions/):
   * the caller decides which of them a model reads and logs the read. An unreadable record is
   * left out (and reported).
   */
  async openForDecision(
    patientId: string,
    resourceTypes: readonly string[],
    admits: (facts: RecordFacts) => boolean,
  ): Promise<DecisionSourceRecord[]> {
    if (!isUuid(patientId)) return [];
    const found = await preparedQuery<VersionRow>(
      this.db,
      `SELECT ${CURRENT_COLUMNS} FROM records r
       WHERE r.patient_id = $1 AND r.resource_type = ANY($2::text[])
       ORDER BY r.created_at, r.id`,
      [patientId, resourceTypes],
    );
    const opened = await Promise.all(
      found
        .map(versionEntity)
        .filter((row) => admits(factsOf(row)))
        .map((row) => this.opener.open(row)),
    );
    return opened
      .filter((o): o is OpenRow => o !== null)
      .map(({ row, resource }) => ({
        id: row.id,
        version: row.version,
        facts: factsOf(row),
        resource: resource as FhirResource,
      }));
  }

  async get(actor: Actor, id: string): Promise<HealthRecordModel> {
    const { open, anchor } = await this.readOne(actor, id);
    return recordModel(open, anchor);
  }

  /**
   * A record the caller may read, opened, judged by the ledger and logged as read. One they
   * may not read answers NOT_FOUND exactly as one that does not exist, so ids leak nothing.
   * One that fails its check (does not open, or, for a grantee, was rolled back) is not logged
   * as read: its patient gets INTERNAL naming it, a grantee NOT_FOUND (see readsAsOwner).
   */
  private async readOne(
    actor: Actor,
    id: string,
  ): Promise<{ open: OpenRow; anchor: AnchorLookup }> {
    const { row, decision } = await this.readableRow(actor, id);
    const owner = readsAsOwner(decision);
    const open = await this.opener.open(row);
    if (!open) {
      throw owner ? unreadableRecord(row.id) : await this.absentToGrantee(actor, decision, row);
    }
    const anchor = await this.anchors.lookupOne(anchorQuestion(open));
    if (!servable(decision, anchor)) {
      throw await this.absentToGrantee(actor, decision, row);
    }
    await this.access.logPermitted(actor, decision, row.patientId, [row]);
    return { open, anchor };
  }

  /**
   * What a grantee gets for a record that failed its check: NOT_FOUND, as for an id that does
   * not exist, and a refusal in the patient's access log, as for a record their grants exclude.
   */
  private async absentToGrantee(
    actor: Actor,
    decision: Decision,
    row: RecordEntity,
  ): Promise<NotFoundError> {
    await this.access.logDenied(actor, decision, row.patientId, [row.id]);
    return new NotFoundError('No record with that id.');
  }

  private async readableRow(
    actor: Actor,
    id: string,
  ): Promise<{ row: RecordEntity; decision: Decision }> {
    const notFound = new NotFoundError('No record with that id.');
    if (!isUuid(id)) throw notFound;
    const row = await this.db.getRepository(RecordEntity).findOneBy({ id });
    if (!row) throw notFound;
    const decision = await this.access.decide(actor, row.patientId);
    if (!this.access.admits(decision, row)) {
      await this.access.logDenied(actor, decision, row.patientId, [row.id]);
      throw notFound;
    }
    return { row, decision };
  }
}

/** Patients whose records one training query reads. */
const TRAINING_CHUNK = 200;

/** Names the record so that it can be reported; says nothing of what it holds. */
export function unreadableRecord(recordId: string): InternalError {
  return new InternalError(
    `Record ${recordId} failed its integrity check and was withheld: its stored ciphertext or labels were altered. Report this record id to your administrator.`,
    { recordId },
  );
}
