// importBundle: a FHIR R4 Bundle becomes the patient's records, all or nothing. The bundle is
// planned and validated whole first (see bundle-plan), sealed under the patient's data key in
// one pass, and inserted in one database transaction; only after it commits are the records
// anchored, through the same crash-safe path as createRecord (a record the ledger did not take
// stays PENDING and the outbox anchors it); the answer does not wait for the ledger. Who may
// import: the patient into their own records, and a clinician holding an active WRITE grant
// (purpose TREATMENT) whose record filters cover every imported record; the clinician's import
// is in the patient's access log.
//
// Importing again stores nothing twice: an entry with a fullUrl takes a record id derived from
// where it came from (crypto/import-id), so a second import of it finds the record the first
// made, and leaves it as it is (unchanged) or stores its new version (updated), as updateRecord
// would. A retry after a lost answer, or a newer export from the same source, adds only what
// is new; and a later bundle's references to entries an earlier one brought name their records.
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { setImmediate } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In } from 'typeorm';
import type { RecordFacts } from '@custodia/chaincode/policy';
import canonicalize from 'canonicalize';
import { Actor, hasRole } from '../../auth';
import {
  BadUserInputError,
  ConflictError,
  ConsentRequiredError,
  ForbiddenError,
} from '../../common/errors';
import { isUuid } from '../../common/ids';
import { Decision, RECORD_CATEGORY_SYSTEM } from '../../consent';
import { PatientsService } from '../../patients';
import {
  DataKey,
  DataKeyRing,
  ImportSource,
  importedRecordId,
  importIdKey,
  randomImportId,
} from '../crypto';
import { confidentialityOf, stampServerFields } from '../fhir';
import { withRestrictionLabel } from '../export/export.service';
import { keptFiling, RecordAmendments, sensitivityAfter } from '../history/record-amendments';
import { RecordAccess } from '../record-access';
import { RecordAnchoring } from '../record-anchoring';
import { RecordOpener } from '../record-opener';
import { archiveCurrentVersion, updateRecordRow } from '../record-rows';
import { RecordEntity } from '../record.entity';
import { RecordsService } from '../records.service';
import { sealedRow } from '../sealed-row';
import { clinicalDate } from '../search/clinical-facts';
import { RecordIndex } from '../search/record-index';
import {
  ImportPlan,
  MAX_BUNDLE_ENTRIES,
  outsideReferenceNames,
  PlanOptions,
  planImport,
  PlannedRecord,
  sameFacts,
  samePerson,
  sourcesOf,
} from './bundle-plan';
import { ImportReportModel } from './import.model';

/** Rows per INSERT statement (18 parameters each, well under PostgreSQL's 65,535). */
const INSERT_CHUNK = 500;
/** PostgreSQL's SQLSTATEs for a duplicate key and a deadlock: two imports of the same entries. */
const RACED = new Set(['23505', '40P01']);
/** How many times an import is planned and stored before a race with others is a CONFLICT. */
const IMPORT_ATTEMPTS = 3;
/**
 * Ids an entry may take: the first derived from its fullUrl, and alternates for when records
 * the importer may not read hold the ones before (a random id only past them all).
 */
const ALTERNATE_IDS = 4;
/** Ids looked up per query. */
const LOOKUP_CHUNK = 5_000;
/**
 * References to no entry of the bundle looked up as entries imported before, at most; past
 * this many a bundle's references are left as they are (a bundle of the entry limit's Synthea
 * records holds fewer).
 */
const MAX_OUTSIDE_REFERENCES = 20_000;
/** Names whose ids are derived between two turns of the event loop. */
const DERIVE_BETWEEN_TURNS = 500;
/** Records sealed between two turns of the event loop. */
const SEAL_BETWEEN_TURNS = 50;
/** Anchors submitted at once after the commit (the embedded ledger cuts them into blocks). */
const ANCHOR_CONCURRENCY = 64;

@Injectable()
export class BundleImportService implements OnApplicationShutdown {
  /** Imports whose records are being anchored. */
  private readonly anchoringNow = new Set<Promise<void>>();
  /** Set at shutdown: records not yet anchored are left PENDING, for the outbox of the next start. */
  private stopping = false;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly patients: PatientsService,
    private readonly keys: DataKeyRing,
    private readonly anchoring: RecordAnchoring,
    private readonly access: RecordAccess,
    private readonly index: RecordIndex,
    private readonly records: RecordsService,
    private readonly opener: RecordOpener,
    private readonly amendments: RecordAmendments,
  ) {}

  async import(
    actor: Actor,
    bundle: unknown,
    patientId: string | null | undefined,
  ): Promise<ImportReportModel> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.importOnce(actor, bundle, patientId);
      } catch (e) {
        // Another first write gave the patient their data key while this import derived its
        // record ids from the key it proposed, or another import stored the same entries
        // first: nothing was written; again, on what is stored now (the other import's
        // records are then found, or, for a caller who may not read them, passed by). So no
        // one learns from a CONFLICT that someone else imported the same source just then.
        if (!(e instanceof KeyRaced || e instanceof ImportRaced)) throw e;
        if (attempt >= IMPORT_ATTEMPTS) throw raced();
      }
    }
  }

  private async importOnce(
    actor: Actor,
    bundle: unknown,
    patientId: string | null | undefined,
  ): Promise<ImportReportModel> {
    const { patientId: target, decision } = await this.access.decideWrite(
      actor,
      patientId,
      'patientId',
    );
    // What the caller may read, asked once: which records an entry may match (asked whatever
    // the database holds, or its timing would tell), the Patient comparison, the READ event.
    const read =
      decision.basis.kind === 'self' ? decision : await this.access.decide(actor, target);
    // The patient's key (or, for their first records, the one they will get: nothing is
    // written before the bundle is checked whole), for the entries' record ids.
    // Past the entry limit the plan refuses the bundle: nothing derived for it first.
    const entries = (bundle as { entry?: unknown } | null)?.entry;
    const withinLimit = !Array.isArray(entries) || entries.length <= MAX_BUNDLE_ENTRIES;
    const sources = withinLimit ? sourcesOf(bundle) : [];
    const named = withinLimit ? await outsideReferenceNames(bundle) : [];
    const references = named.length <= MAX_OUTSIDE_REFERENCES ? named : [];
    const existingKey =
      sources.length || references.length ? await this.keys.existingLiveKey(target) : null;
    const proposedKey = sources.length && !existingKey ? this.keys.unsavedKey() : undefined;
    const ids = await this.identities(
      read,
      target,
      sources,
      references,
      existingKey ?? proposedKey,
    );
    const plan = await planImport(bundle, target, ids);
    if (plan.adopted) await this.refuseAnotherPatient(actor, plan.adopted, target);
    for (const r of plan.records) {
      // A record imported before is held to updateRecord's rules once it is known to change
      // (store): left as it is, it needs no grant to write it.
      if (ids.matched.has(r.id)) continue;
      // As createRecord: a grantee filing a record apart from its content's category would
      // slip it past the category scope of their own grant and of every other.
      if (r.refiled && decision.basis.kind !== 'self') {
        await this.access.logDenied(actor, decision, target, []);
        throw refiledError(r);
      }
      if (!this.access.admits(decision, { ...r, resourceType: r.resource.resourceType })) {
        await this.access.logDenied(actor, decision, target, []);
        // Named by what the record is: its type, its category and whether it is restricted.
        const what = [
          r.sensitivity === 'RESTRICTED' ? 'restricted' : null,
          r.resource.resourceType,
          'records',
          r.category === null ? null : `of category ${r.category}`,
        ]
          .filter(Boolean)
          .join(' ');
        throw new ConsentRequiredError(
          `entry[${r.entry}]: your grants do not cover ${what} of this patient; nothing was imported.`,
        );
      }
    }
    // After the grant checks, and against what the caller may read: a refusal that depended on
    // a stored Patient record the caller may not read would tell its birth date, guess by guess.
    if (plan.records.some((r) => r.resource.resourceType === 'Patient')) {
      await this.refuseAnotherPerson(plan.records, target, ids.matched, (facts) =>
        this.access.admits(read, facts),
      );
    }
    const { created, updated, unchanged } = await this.store(
      actor,
      decision,
      target,
      plan.records,
      proposedKey,
      ids.matched,
    );
    // A clinician's import is one WRITE event citing the grant that covers it; the records it
    // found unchanged (which told them what those hold) one READ event, as a read of them.
    const written = [...created, ...updated];
    if (decision.basis.kind === 'grants' && written.length) {
      await this.access.logPermitted(actor, decision, target, written);
    }
    if (decision.basis.kind !== 'self' && unchanged.length) {
      await this.access.logPermitted(actor, read, target, unchanged);
    }
    // Committed: the answer need not wait for the ledger. Anchoring runs on (tracked, so that
    // shutdown waits for it); a record it does not anchor stays PENDING for the outbox, which
    // also picks up whatever a crash interrupted.
    const anchoring = this.anchorAll(created, updated).finally(() =>
      this.anchoringNow.delete(anchoring),
    );
    this.anchoringNow.add(anchoring);
    return {
      created: created.length,
      updated: updated.length,
      unchanged: unchanged.length,
      skipped: plan.skipped,
      skippedTypes: plan.skippedTypes,
      recordIds: created.map((r) => r.id),
      updatedIds: updated.map((r) => r.id),
      unchangedIds: unchanged.map((r) => r.id),
    };
  }

  /**
   * Each entry's record id, and the records that references to no entry of the bundle name.
   *
   * An entry with a fullUrl takes an id derived from it under the patient's key
   * (importedRecordId), so that importing it again finds the record it made; an entry of this
   * server's own export (`urn:uuid:<record id>`) finds the record it was exported from; an
   * entry without a fullUrl takes a random id. A reference to no entry of the bundle that is
   * the fullUrl of an entry imported before (a newer bundle's Observation naming an Encounter
   * the first one brought, say) names that record.
   *
   * A record the caller may not read is never matched: whether it exists must not show in the
   * answer (a clinician with a WRITE grant alone could otherwise probe the patient's records by
   * guessing sources), so such an entry makes a record of its own, as if none existed, and such
   * a reference is left as it is.
   */
  private async identities(
    read: Decision,
    patientId: string,
    sources: ImportSource[],
    references: string[],
    dek: DataKey | undefined,
  ): Promise<Pick<PlanOptions, 'newId' | 'imported'> & { matched: Set<string> }> {
    const matched = new Set<string>();
    if (!dek || sources.length + references.length === 0) return { matched };
    const key = importIdKey(dek.key);
    // Each name's candidates: the record it names itself (an export of this server's gives
    // `urn:uuid:<record id>`), then the ids an entry of that fullUrl takes: the first, and as
    // many others as records already hold (see below).
    const candidates = new Map<string, { named?: string; derived: string[] }>();
    const extend = async (name: string) => {
      let c = candidates.get(name);
      if (!c) {
        const named = /^urn:uuid:(.+)$/i.exec(name)?.[1]?.toLowerCase();
        c = { named: named && isUuid(named) ? named : undefined, derived: [] };
        candidates.set(name, c);
      }
      const from = c.derived.length;
      for (let n = from; n < from + ALTERNATE_IDS; n++)
        c.derived.push(importedRecordId(key, name, n));
      return (c.named && from === 0 ? [c.named] : []).concat(c.derived.slice(from));
    };
    const stored = new Map<string, StoredRow>();
    const readable = (id: string, resourceType?: string) => {
      const r = stored.get(id);
      return (
        r !== undefined &&
        r.patient_id === patientId &&
        (resourceType === undefined || r.resource_type === resourceType) &&
        this.access.admits(read, {
          resourceType: r.resource_type,
          category: r.category,
          sensitivity: r.sensitivity,
        })
      );
    };
    let asking: string[] = [];
    for (const name of new Set([...sources.map((s) => s.fullUrl), ...references])) {
      asking.push(...(await extend(name)));
      // Deriving takes a few microseconds a name: other requests get their turn between.
      if (candidates.size % DERIVE_BETWEEN_TURNS === 0) await setImmediate();
    }
    for (;;) {
      for (const r of await this.storedRows(asking)) stored.set(r.id, r);
      // An entry's source whose ids are all held by records, none of them one it may match,
      // takes further ids (never a random one: how many it passed would tell what exists).
      asking = [];
      for (const s of sources) {
        const c = candidates.get(s.fullUrl)!;
        const settled =
          c.derived.some((id) => !stored.has(id)) ||
          [c.named, ...c.derived].some((id) => id !== undefined && readable(id, s.resourceType));
        if (!settled) asking.push(...(await extend(s.fullUrl)));
      }
      if (asking.length === 0) break;
    }
    const idsOf = (name: string) => {
      const c = candidates.get(name);
      return c ? (c.named ? [c.named] : []).concat(c.derived) : [];
    };
    // One record per entry: an id already given (an export's entry naming the record that
    // another entry of the same bundle was imported as) is not given again.
    const given = new Set<string>();
    const give = (id: string) => (given.add(id), id);
    return {
      matched,
      newId: (source) => {
        const c = source ? candidates.get(source.fullUrl) : undefined;
        if (!c) return randomUUID();
        const match = idsOf(source!.fullUrl).find(
          (id) => !given.has(id) && readable(id, source!.resourceType),
        );
        if (match) {
          matched.add(match);
          return give(match);
        }
        // Nothing of theirs to match: a new record, under the first of its ids no record holds.
        // Never a random id of another shape where a record the caller may not read holds the
        // first: the id itself would tell that one exists.
        const free = c.derived.find((id) => !stored.has(id) && !given.has(id));
        return give(free ?? randomImportId());
      },
      imported: (names) => {
        for (const name of names) {
          const id = idsOf(name).find((c) => readable(c));
          if (!id) continue;
          // A Patient record is the patient's: a reference to one names the owner, as one to
          // the bundle's own Patient entry does.
          const type = stored.get(id)!.resource_type;
          return type === 'Patient' ? `Patient/${patientId}` : `${type}/${id}`;
        }
        return undefined;
      },
    };
  }

  /** The records holding any of `ids`, in queries of a bounded size. */
  private async storedRows(ids: readonly string[]): Promise<StoredRow[]> {
    const rows: StoredRow[] = [];
    const distinct = [...new Set(ids)];
    for (let i = 0; i < distinct.length; i += LOOKUP_CHUNK) {
      rows.push(
        ...(await this.db.query<StoredRow[]>(
          `SELECT id, patient_id, resource_type, category, sensitivity FROM records
           WHERE id = ANY($1::uuid[])`,
          [distinct.slice(i, i + LOOKUP_CHUNK)],
        )),
      );
    }
    return rows;
  }

  /**
   * A bundle's Patient (or, without one, the patient its records name by reference) is taken
   * to be the target patient. A clinician must not file a patient's records they may read
   * into another's chart this way (someone else's records, under the target's grants): a
   * bundle naming a patient of this server whom the caller may read is refused. Whether an id
   * is a patient here is never told to anyone who may not read them: for every other caller
   * (a patient importing into their own profile, say), the id is a source system's, like any
   * other, and maps onto the target. An erased patient's id names no one's records any more.
   */
  private async refuseAnotherPatient(
    actor: Actor,
    adopted: NonNullable<ImportPlan['adopted']>,
    target: string,
  ): Promise<void> {
    const id = /^Patient\/(.+)$/.exec(adopted.reference)?.[1];
    if (id === undefined || id === target || !isUuid(id) || !hasRole(actor, 'CLINICIAN')) return;
    const mayRead = (await this.access.decide(actor, id)).basis.kind !== 'none';
    if (!mayRead || !(await this.patients.isLive(id))) return;
    throw new BadUserInputError(
      `entry[${adopted.entry}] names another patient of this server as its patient; a bundle imports one patient's data, the target's, and nothing was imported`,
      `bundle.entry[${adopted.entry}].resource`,
    );
  }

  /**
   * A bundle's Patient whose birth date or sex differs from the patient's own stored Patient
   * record describes someone else: importing it would file another person's history in this
   * chart (Synthea's bundle of one patient into another's profile was taken without a word).
   * Names are not compared (they change and are spelt differently from system to system), and
   * the error does not say which element differs: a WRITE grant does not entitle its holder to
   * learn the patient's birth date.
   *
   * An entry that finds a Patient record of this chart (imported before, or this server's
   * export of it) and gives the birth date and sex that record gives brings no one new, and is
   * not held to the others: a chart whose Patient records already disagree (a patient may
   * store what they like, and a WRITE-only grantee's Patient is not compared with records it
   * may not read) still takes its own export, or a bundle it came from, back. Every other
   * Patient entry must agree with each other such entry and with every Patient record of the
   * chart the caller may read.
   */
  private async refuseAnotherPerson(
    records: PlannedRecord[],
    target: string,
    matched: ReadonlySet<string>,
    mayRead: (facts: RecordFacts) => boolean,
  ): Promise<void> {
    const incoming = records.filter((r) => r.resource.resourceType === 'Patient');
    if (!incoming.length) return;
    // Every stored Patient record of theirs the caller may read, opened (by the server, never
    // shown): compared with one the caller may not read, the answer would tell what it holds.
    const stored = await this.records.openForDecision(target, ['Patient'], mayRead);
    const byId = new Map(stored.map((s) => [s.id, s.resource]));
    const newcomers = incoming.filter((r) => {
      const own = matched.has(r.id) ? byId.get(r.id) : undefined;
      return !own || !sameFacts(own, r.resource);
    });
    for (const r of newcomers) {
      const other = newcomers.find((o) => !samePerson(o.resource, r.resource));
      if (other) {
        const [first, second] = [r, other].sort((a, b) => a.entry - b.entry);
        throw new BadUserInputError(
          `entry[${second.entry}] is a Patient with another birth date or sex than entry[${first.entry}]'s; a bundle imports one person's data, and nothing was imported`,
          `bundle.entry[${second.entry}].resource`,
        );
      }
      if (stored.some((s) => !samePerson(s.resource, r.resource))) {
        throw new BadUserInputError(
          `entry[${r.entry}] is a Patient whose birth date or sex differs from this patient's own Patient record: the bundle describes someone else, and nothing was imported (if it is this patient, correct their Patient record first, or leave the bundle's Patient entry out)`,
          `bundle.entry[${r.entry}].resource`,
        );
      }
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.anchoringNow);
  }

  /**
   * Seals every record and writes them all in one transaction: a record the bundle brings for
   * the first time is inserted; one imported before (its id derived from the same source) is
   * left as it is when its content and labels are the same, and otherwise gets a new version,
   * as updateRecord would store it (its grants must cover it as it was and as it becomes; only
   * the patient lifts a restriction; a filing the patient chose stays unless the bundle names
   * another).
   */
  private async store(
    actor: Actor,
    decision: Decision,
    patientId: string,
    records: PlannedRecord[],
    proposedKey: DataKey | undefined,
    matched: ReadonlySet<string>,
  ): Promise<{ created: RecordEntity[]; updated: RecordEntity[]; unchanged: RecordEntity[] }> {
    if (records.length === 0) return { created: [], updated: [], unchanged: [] };
    return this.db
      .transaction(async (m) => {
        const dek = await this.keys.liveKey(patientId, m, proposedKey);
        // The ids were derived from the key proposed: another request gave the patient theirs.
        if (proposedKey && dek.id !== proposedKey.id) throw new KeyRaced();
        // Locked (data key, then records: the order every writer takes), so that an amendment
        // or another import of the same records waits for this one.
        const stored = await m.getRepository(RecordEntity).find({
          where: { id: In(records.map((r) => r.id)) },
          lock: { mode: 'pessimistic_write' },
        });
        const current = new Map(stored.map((row) => [row.id, row]));
        const fresh: PlannedRecord[] = [];
        const updated: RecordEntity[] = [];
        const unchanged: RecordEntity[] = [];
        const now = new Date(Date.now());
        for (const r of records) {
          const row = current.get(r.id);
          // A record that appeared under this id since planning (another import of the same
          // source): its grant checks were not made, and it may be one the caller cannot read.
          if (row && !matched.has(r.id)) throw new ImportRaced();
          if (!row) {
            // A record matched when planning, gone since: its grant checks were left to this
            // step, so nothing is written on a premise that no longer holds.
            if (matched.has(r.id)) throw new ImportRaced();
            fresh.push(r);
            continue;
          }
          const next = await this.nextVersion(actor, decision, dek, row, r, now);
          if (next === null) {
            unchanged.push(row);
            continue;
          }
          await archiveCurrentVersion(m, row.id);
          await updateRecordRow(m, next);
          updated.push(next);
        }
        const created = await this.insert(m, dek, patientId, fresh);
        return { created, updated, unchanged };
      })
      .catch((e: unknown) => {
        // Two imports of the same entries at once: the second finds no record to update, then
        // waits for the first's inserts of those ids, and fails on them.
        if (RACED.has((e as { code?: string }).code ?? '')) throw new ImportRaced();
        throw e;
      });
  }

  /**
   * The new version an entry makes of a record it imported before, sealed; null when the
   * record already holds the same content under the same labels.
   */
  private async nextVersion(
    actor: Actor,
    decision: Decision,
    dek: DataKey,
    row: RecordEntity,
    r: PlannedRecord,
    now: Date,
  ): Promise<RecordEntity | null> {
    const before = await this.opener.open(row);
    const category = r.tagged
      ? r.category
      : keptFiling(row.category, r.category, before?.resource ?? null);
    const labelled = confidentialityOf(r.resource);
    const sensitivity = sensitivityAfter(row.sensitivity, labelled);
    if (
      before &&
      category === row.category &&
      sensitivity === row.sensitivity &&
      // As stored, or as this server's export wrote its restriction into it.
      sameContent(r.resource, before.resource, withRestrictionLabel(row, before.resource))
    ) {
      return null;
    }
    const self = decision.basis.kind === 'self';
    if (!self && !this.access.admits(decision, row)) {
      await this.access.logDenied(actor, decision, row.patientId, [row.id]);
      throw new ConsentRequiredError(
        `entry[${r.entry}] updates a record your grants do not let you amend; nothing was imported.`,
      );
    }
    // As updateRecord's category: a grantee filing a changed record apart from its content's
    // category would slip it past the category scope of every grant.
    if (!self && r.refiled) {
      await this.access.logDenied(actor, decision, row.patientId, [row.id]);
      throw refiledError(r);
    }
    if (!self && labelled === 'open' && row.sensitivity === 'RESTRICTED') {
      await this.access.logDenied(actor, decision, row.patientId, [row.id]);
      throw new ForbiddenError(
        `entry[${r.entry}] would lift a record's restriction, which only the patient can do (keep its confidentiality label R); nothing was imported.`,
      );
    }
    const becomes = { resourceType: row.resourceType, category, sensitivity };
    if (!self && !this.access.admits(decision, becomes)) {
      await this.access.logDenied(actor, decision, row.patientId, [row.id]);
      throw new ConsentRequiredError(
        `entry[${r.entry}]: your grants do not cover the record it updates as it would become (its category or sensitivity); nothing was imported.`,
      );
    }
    const version = row.version + 1;
    stampServerFields(r.resource, row.id, version, now);
    return sealedRow(
      dek,
      { recordId: row.id, patientId: row.patientId, version, ...becomes },
      r.resource,
      { createdAt: row.createdAt, updatedAt: now },
      this.index.entryFor(dek, r.resource, row.createdAt),
    );
  }

  /** Seals the records the bundle brings for the first time and inserts them. */
  private async insert(
    m: EntityManager,
    dek: DataKey,
    patientId: string,
    records: PlannedRecord[],
  ): Promise<RecordEntity[]> {
    if (records.length === 0) return [];
    // Whole milliseconds, so that page cursors round-trip exactly (as createRecord). Each
    // record is stored a millisecond apart, in order of clinical date: a patient's records are
    // listed newest stored first, and an import's thousands of records would otherwise share
    // one instant and list in the random order of their ids. Undated ones come last, as their
    // clinical date is their storing (effectiveAt falls back to createdAt).
    const now = Date.now();
    const order = records
      .map((r, i) => ({ i, at: clinicalDate(r.resource)?.getTime() ?? Infinity }))
      .sort((a, b) => a.at - b.at || a.i - b.i);
    const storedAt = new Map(
      order.map(({ i }, rank) => [records[i], new Date(now - (records.length - 1 - rank))]),
    );
    const seal = (r: PlannedRecord): RecordEntity => {
      const at = storedAt.get(r)!;
      stampServerFields(r.resource, r.id, 1, at);
      const labels = {
        recordId: r.id,
        patientId,
        version: 1,
        resourceType: r.resource.resourceType,
        category: r.category,
        sensitivity: r.sensitivity,
      };
      return sealedRow(
        dek,
        labels,
        r.resource,
        { createdAt: at, updatedAt: at },
        // Searchable at once, as a record createRecord stores.
        this.index.entryFor(dek, r.resource, at),
      );
    };
    const repo = m.getRepository(RecordEntity);
    const rows: RecordEntity[] = [];
    // Inserted in order of id: two imports of the same entries then wait for each other at
    // the first of them, where inserting in bundle order they could deadlock.
    const byId = [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (let i = 0; i < byId.length; i += INSERT_CHUNK) {
      const chunk: RecordEntity[] = [];
      for (const r of byId.slice(i, i + INSERT_CHUNK)) {
        chunk.push(seal(r));
        // Sealing takes a tenth of a millisecond a record: other requests (and /health) get
        // their turn between a few dozen, not after the whole bundle.
        if (chunk.length % SEAL_BETWEEN_TURNS === 0) await setImmediate();
      }
      await repo.insert(chunk);
      rows.push(...chunk);
    }
    // The answer lists them in bundle order.
    const at = new Map(records.map((r, i) => [r.id, i]));
    return rows.sort((a, b) => at.get(a.id)! - at.get(b.id)!);
  }

  /**
   * Anchors the committed records, a bounded number at a time: the new ones, then the new
   * versions (each after any earlier version still pending). One the ledger does not take now
   * stays PENDING for the outbox (anchoring never throws).
   */
  private async anchorAll(created: RecordEntity[], updated: RecordEntity[]): Promise<void> {
    const work: (() => Promise<unknown>)[] = [
      ...created.map(
        (row) => () =>
          this.anchoring.anchorNow({
            id: row.id,
            version: row.version,
            patientId: row.patientId,
            contentHash: row.contentHash,
          }),
      ),
      ...updated.map((row) => () => this.amendments.anchorVersions(row)),
    ];
    let next = 0;
    const worker = async () => {
      while (next < work.length && !this.stopping) await work[next++]();
    };
    await Promise.all(Array.from({ length: Math.min(ANCHOR_CONCURRENCY, work.length) }, worker));
  }
}

/** What the lookup of an entry's candidate ids reads of a record. */
interface StoredRow {
  id: string;
  patient_id: string;
  resource_type: string;
  category: string | null;
  sensitivity: RecordEntity['sensitivity'];
}

/**
 * As createRecord and updateRecord: a grantee filing a record apart from its content's category
 * would slip it past the category scope of their own grant and of every other.
 */
function refiledError(r: PlannedRecord): ForbiddenError {
  return new ForbiddenError(
    `entry[${r.entry}]: only the patient can file a record under another category than the one it carries (its ${RECORD_CATEGORY_SYSTEM} tag); nothing was imported.`,
  );
}

function raced(): ConflictError {
  return new ConflictError(
    'Another import of the same records ran at the same time; nothing was imported. Import the bundle again: what the other stored is then left as it is.',
  );
}

/** The patient's first data key came from another request (import tries again). */
class KeyRaced extends Error {}

/** Another import stored or changed the same records since planning (import tries again). */
class ImportRaced extends Error {}

/**
 * Whether an entry's resource holds the same content as any of the stored forms given: all but
 * meta.versionId and meta.lastUpdated, which are the server's (the entry's are not stamped yet).
 */
function sameContent(
  incoming: Record<string, unknown>,
  ...stored: Record<string, unknown>[]
): boolean {
  const content = canonicalize(withoutServerMeta(incoming));
  return stored.some((s) => canonicalize(withoutServerMeta(s)) === content);
}

function withoutServerMeta(resource: Record<string, unknown>): Record<string, unknown> {
  const meta = resource.meta as Record<string, unknown> | undefined;
  if (meta === undefined) return resource;
  const { versionId: _v, lastUpdated: _l, ...rest } = meta;
  const copy = { ...resource };
  if (Object.keys(rest).length) copy.meta = rest;
  else delete copy.meta;
  return copy;
}
