// Encrypted FHIR records: validated, sealed with the patient's data key, anchored on the
// ledger, listed in keyset pages, opened and checked on the way out. Who may read what is
// decided by the policy decision point before any row is loaded, and every read is logged.
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { RecordAnchor } from '@custodia/chaincode';
import type { RecordFacts } from '@custodia/chaincode/policy';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Actor, hasRole } from '../auth';
import {
  BadUserInputError,
  ConsentRequiredError,
  InternalError,
  NotFoundError,
} from '../common/errors';
import { decodeCursor, encodeCursor, pageSize } from '../common/pagination';
import { preparedQuery } from '../database/prepared';
import { AccessLog } from '../audit';
import { Decision, PolicyDecisionPoint } from '../consent';
import { Ledger, LEDGER } from '../ledger';
import { PatientsService } from '../patients';
import { contentHash, DataKeyRing, openRecord, sealRecord } from './crypto';
import { deriveCategory, labelledRestricted, validatePatientResource } from './fhir';
import { RecordAnchoring } from './record-anchoring';
import { RecordEntity } from './record.entity';
import {
  CreateRecordInput,
  HealthRecordModel,
  IntegrityReportModel,
  IntegrityStatus,
  RecordPageModel,
  SensitivityEnum,
} from './record.model';

export interface RecordFilter {
  resourceType?: string | null;
  category?: string | null;
  first?: number | null;
  after?: string | null;
}

const HASH_CACHE_LIMIT = 50_000;
const CATEGORY = /^[A-Za-z0-9._:/-]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

@Injectable()
export class RecordsService {
  private readonly logger = new Logger(RecordsService.name);
  private readonly hashes = new Map<string, string>();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly patients: PatientsService,
    private readonly keys: DataKeyRing,
    private readonly anchoring: RecordAnchoring,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly pdp: PolicyDecisionPoint,
    private readonly log: AccessLog,
  ) {}

  async create(actor: Actor, input: CreateRecordInput): Promise<HealthRecordModel> {
    const own = await this.patients.requirePatientId(actor);
    if (input.patientId && input.patientId !== own) {
      throw new ConsentRequiredError(
        "You may only add records to your own patient profile; writing to another patient's record needs their consent.",
      );
    }
    const resource = validatePatientResource(input.resource, own);
    const category = input.category ?? deriveCategory(resource);
    if (category !== null && !CATEGORY.test(category)) {
      throw new BadUserInputError(
        'category must be a code of 1–64 letters, digits or . _ : / -',
        'input.category',
      );
    }
    const restricted =
      labelledRestricted(resource) || input.sensitivity === SensitivityEnum.RESTRICTED;
    const now = new Date();
    const row = await this.db.transaction(async (m) => {
      const dek = await this.keys.liveKey(own, m);
      const id = randomUUID();
      const version = 1;
      const sealed = sealRecord(dek.key, { recordId: id, patientId: own, version }, resource);
      const entity: RecordEntity = {
        id,
        patientId: own,
        version,
        resourceType: resource.resourceType,
        category,
        sensitivity: restricted ? 'RESTRICTED' : 'NORMAL',
        keyId: dek.id,
        iv: sealed.iv,
        authTag: sealed.tag,
        ciphertext: sealed.ciphertext,
        contentHash: sealed.contentHash,
        anchorState: 'PENDING',
        anchoredHash: null,
        ledgerTxId: null,
        createdAt: now,
        updatedAt: now,
      };
      await m.getRepository(RecordEntity).insert(entity);
      return entity;
    });
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
    return this.toModel(row, resource, integrityOf(row, row.contentHash));
  }

  /** Asks the ledger itself whether the stored record matches its anchor. */
  async verify(actor: Actor, id: string): Promise<IntegrityReportModel> {
    const row = await this.readableRow(actor, id);
    const opened = await this.decrypt(row);
    const storedHash = contentHash(opened.salt, opened.resource);
    try {
      const anchor = await this.ledger.evaluate<RecordAnchor & { matches: boolean }>(
        'records',
        'VerifyRecord',
        [row.id, String(row.version), storedHash],
      );
      return {
        recordId: row.id,
        status: anchor.matches ? IntegrityStatus.VERIFIED : IntegrityStatus.MISMATCH,
        storedHash,
        ledgerHash: anchor.contentHash,
        ledgerTxId: anchor.txId,
      };
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      return {
        recordId: row.id,
        status: IntegrityStatus.PENDING,
        storedHash,
        ledgerHash: null,
        ledgerTxId: null,
      };
    }
  }

  async list(actor: Actor, patientId: string, filter: RecordFilter): Promise<RecordPageModel> {
    const size = pageSize(filter.first);
    const after = decodeCursor(filter.after);
    const decision = await this.decide(actor, patientId);
    if (decision.basis.kind === 'none') {
      await this.logDenied(actor, decision, patientId, []);
      throw new ConsentRequiredError(
        "No active consent lets you read this patient's records. Ask the patient to grant access.",
      );
    }
    // Only what the grants permit is loaded: one query for the whole page, none per record.
    const params: unknown[] = [patientId];
    const where = ['r.patient_id = $1'];
    if (filter.resourceType) {
      params.push(filter.resourceType);
      where.push(`r.resource_type = $${params.length}`);
    }
    if (filter.category) {
      params.push(filter.category);
      where.push(`r.category = $${params.length}`);
    }
    if (after) {
      params.push(after.createdAt, after.id);
      where.push(`(r.created_at, r.id) < ($${params.length - 1}, $${params.length})`);
    }
    const permitted = this.pdp.recordFilterSql(decision, 'r', params);
    if (permitted) where.push(permitted);
    params.push(size + 1);
    const text = `SELECT ${RECORD_COLUMNS} FROM records r WHERE ${where.join(' AND ')}
       ORDER BY r.created_at DESC, r.id DESC LIMIT $${params.length}`;
    const found = await preparedQuery<RecordRow>(this.db, text, params);
    const rows = found.map(toEntity).filter((r) => this.pdp.admits(decision, factsOf(r)));
    const page = rows.slice(0, size);
    const items = await Promise.all(page.map((r) => this.open(r)));
    await this.logPermitted(actor, decision, patientId, page);
    const last = page[page.length - 1];
    return { items, nextCursor: rows.length > size && last ? encodeCursor(last) : null };
  }

  /**
   * The decrypted resources of patients a training node may train on (the caller has checked
   * each one's TRAIN grant), one query for all of them; each patient's access log shows the
   * read, under the grant it used.
   */
  async resourcesForTraining(
    nodeId: string,
    grants: ReadonlyMap<string, string>,
  ): Promise<Map<string, Record<string, unknown>[]>> {
    const patientIds = [...grants.keys()];
    const found: RecordRow[] = await this.db.query(
      `SELECT ${RECORD_COLUMNS} FROM records r WHERE r.patient_id = ANY($1::uuid[])
       ORDER BY r.patient_id, r.created_at, r.id`,
      [patientIds],
    );
    const byPatient = new Map<
      string,
      { rows: RecordEntity[]; resources: Record<string, unknown>[] }
    >();
    for (const row of found.map(toEntity)) {
      const opened = await this.decrypt(row);
      const entry = byPatient.get(row.patientId) ?? { rows: [], resources: [] };
      entry.rows.push(row);
      entry.resources.push(opened.resource);
      byPatient.set(row.patientId, entry);
    }
    await Promise.all(
      [...byPatient].map(([patientId, entry]) =>
        this.log.record({
          actorId: nodeId,
          patientId,
          recordIds: entry.rows.map((r) => r.id),
          action: 'TRAIN',
          purpose: 'RESEARCH',
          decision: 'PERMIT',
          consentId: grants.get(patientId) ?? null,
          breakGlass: false,
          reason: null,
        }),
      ),
    );
    return new Map([...byPatient].map(([id, entry]) => [id, entry.resources]));
  }

  async get(actor: Actor, id: string): Promise<HealthRecordModel> {
    return this.open(await this.readableRow(actor, id));
  }

  /**
   * The row of a record the caller may read, logged as read; a record they may not read
   * answers NOT_FOUND exactly as one that does not exist, so ids leak nothing.
   */
  private async readableRow(actor: Actor, id: string): Promise<RecordEntity> {
    const notFound = new NotFoundError('No record with that id.');
    if (!UUID.test(id)) throw notFound;
    const row = await this.db.getRepository(RecordEntity).findOneBy({ id });
    if (!row) throw notFound;
    const decision = await this.decide(actor, row.patientId);
    if (!this.pdp.admits(decision, factsOf(row))) {
      await this.logDenied(actor, decision, row.patientId, [row.id]);
      throw notFound;
    }
    await this.logPermitted(actor, decision, row.patientId, [row]);
    return row;
  }

  private async decide(actor: Actor, patientId: string): Promise<Decision> {
    const own = hasRole(actor, 'PATIENT') ? await this.patients.patientIdOf(actor) : null;
    return this.pdp.decide(actor, own, patientId, 'READ', 'TREATMENT');
  }

  /** One access event per record-reading call: the records returned and on what basis. */
  private async logPermitted(
    actor: Actor,
    decision: Decision,
    patientId: string,
    rows: RecordEntity[],
  ): Promise<void> {
    const basis = decision.basis;
    const consentId =
      basis.kind === 'grants'
        ? (rows.map((r) => this.pdp.permittingGrant(decision, factsOf(r))).find(Boolean) ??
          basis.grants[0].id)
        : null;
    await this.log.record({
      actorId: actor.id,
      patientId,
      recordIds: rows.map((r) => r.id),
      action: 'READ',
      purpose: basis.kind === 'self' ? 'SELF' : 'TREATMENT',
      decision: 'PERMIT',
      consentId,
      breakGlass: basis.kind === 'emergency',
      reason: basis.kind === 'emergency' ? basis.reason : null,
      emergencyId: basis.kind === 'emergency' ? basis.emergencyId : undefined,
      actorOrganizationId: actor.organizationId ?? undefined,
    });
  }

  private async logDenied(
    actor: Actor,
    decision: Decision,
    patientId: string,
    recordIds: string[],
  ): Promise<void> {
    // Only attempts on a real patient are theirs to see.
    if (!UUID.test(patientId) || !(await this.patients.exists(patientId))) return;
    await this.log.record({
      actorId: actor.id,
      patientId,
      recordIds,
      action: 'READ',
      purpose: decision.basis.kind === 'self' ? 'SELF' : 'TREATMENT',
      decision: 'DENY',
      consentId: null,
      breakGlass: false,
      reason: null,
    });
  }

  /** Decrypts and checks a row; an altered row fails loudly instead of returning wrong data. */
  private async open(row: RecordEntity): Promise<HealthRecordModel> {
    const opened = await this.decrypt(row);
    // Against the anchored hash kept in Postgres: no ledger round trip per read.
    const actual = row.anchorState === 'ANCHORED' ? this.hashOf(row, opened) : null;
    return this.toModel(row, opened.resource, integrityOf(row, actual));
  }

  /**
   * The content hash of a decrypted record. Remembered per record version and GCM tag: a
   * ciphertext that decrypts under the same tag is the same plaintext, so the hash (never
   * the plaintext, which is not cached) can be reused.
   */
  private hashOf(row: RecordEntity, opened: { salt: Buffer; resource: unknown }): string {
    const key = `${row.id}:${row.version}:${row.authTag.toString('base64')}`;
    let hash = this.hashes.get(key);
    if (hash === undefined) {
      hash = contentHash(opened.salt, opened.resource);
      if (this.hashes.size >= HASH_CACHE_LIMIT)
        this.hashes.delete(this.hashes.keys().next().value!);
      this.hashes.set(key, hash);
    }
    return hash;
  }

  private async decrypt(row: RecordEntity) {
    try {
      const dek = await this.keys.key(row.keyId, row.patientId);
      return openRecord(
        dek,
        { recordId: row.id, patientId: row.patientId, version: row.version },
        { iv: row.iv, tag: row.authTag, ciphertext: row.ciphertext },
      );
    } catch (e) {
      this.logger.error({ recordId: row.id, errorType: (e as Error).name }, 'record unreadable');
      throw new InternalError(
        `Record ${row.id} failed its integrity check and was not returned: its stored ciphertext or binding was altered. Report this to your administrator.`,
      );
    }
  }

  private toModel(
    row: RecordEntity,
    resource: Record<string, unknown>,
    integrity: IntegrityStatus,
  ): HealthRecordModel {
    return {
      id: row.id,
      patientId: row.patientId,
      resourceType: row.resourceType,
      category: row.category,
      sensitivity: row.sensitivity as SensitivityEnum,
      resource,
      version: row.version,
      contentHash: row.contentHash,
      integrity,
      ledgerTxId: row.ledgerTxId,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    };
  }
}

/** The page query reads rows raw: TypeORM's query building and hydration cost every read. */
const RECORD_COLUMNS = `r.id, r.patient_id, r.version, r.resource_type, r.category, r.sensitivity,
  r.key_id, r.iv, r.auth_tag, r.ciphertext, r.content_hash, r.anchor_state, r.anchored_hash,
  r.ledger_tx_id, r.created_at, r.updated_at`;

interface RecordRow {
  id: string;
  patient_id: string;
  version: number;
  resource_type: string;
  category: string | null;
  sensitivity: RecordEntity['sensitivity'];
  key_id: string;
  iv: Buffer;
  auth_tag: Buffer;
  ciphertext: Buffer;
  content_hash: string;
  anchor_state: RecordEntity['anchorState'];
  anchored_hash: string | null;
  ledger_tx_id: string | null;
  created_at: Date;
  updated_at: Date;
}

function toEntity(r: RecordRow): RecordEntity {
  return {
    id: r.id,
    patientId: r.patient_id,
    version: r.version,
    resourceType: r.resource_type,
    category: r.category,
    sensitivity: r.sensitivity,
    keyId: r.key_id,
    iv: r.iv,
    authTag: r.auth_tag,
    ciphertext: r.ciphertext,
    contentHash: r.content_hash,
    anchorState: r.anchor_state,
    anchoredHash: r.anchored_hash,
    ledgerTxId: r.ledger_tx_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function factsOf(row: RecordEntity): RecordFacts {
  return { resourceType: row.resourceType, category: row.category, sensitivity: row.sensitivity };
}

/**
 * VERIFIED when the hash recomputed from the decrypted record equals the anchored one (and
 * the stored one); MISMATCH when not; PENDING until anchored.
 */
function integrityOf(row: RecordEntity, actualHash: string | null): IntegrityStatus {
  if (row.anchorState !== 'ANCHORED') return IntegrityStatus.PENDING;
  return actualHash === row.anchoredHash && actualHash === row.contentHash
    ? IntegrityStatus.VERIFIED
    : IntegrityStatus.MISMATCH;
}
