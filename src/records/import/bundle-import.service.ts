// importBundle: a FHIR R4 Bundle becomes the patient's records, all or nothing. The bundle is
// planned and validated whole first (see bundle-plan), sealed under the patient's data key in
// one pass, and inserted in one database transaction; only after it commits are the records
// anchored, through the same crash-safe path as createRecord (a record the ledger did not take
// stays PENDING and the outbox anchors it); the answer does not wait for the ledger. Who may
// import: the patient into their own records, and a clinician holding an active WRITE grant
// (purpose TREATMENT) whose record filters cover every imported record; the clinician's import
// is in the patient's access log.
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { setImmediate } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import type { RecordFacts } from '@custodia/chaincode/policy';
import { Actor, hasRole } from '../../auth';
import { BadUserInputError, ConsentRequiredError, ForbiddenError } from '../../common/errors';
import { isUuid } from '../../common/ids';
import { RECORD_CATEGORY_SYSTEM } from '../../consent';
import { PatientsService } from '../../patients';
import { DataKeyRing } from '../crypto';
import { stampServerFields } from '../fhir';
import { RecordAccess } from '../record-access';
import { RecordAnchoring } from '../record-anchoring';
import { RecordEntity } from '../record.entity';
import { RecordsService } from '../records.service';
import { sealedRow } from '../sealed-row';
import { clinicalDate } from '../search/clinical-facts';
import { RecordIndex } from '../search/record-index';
import { ImportPlan, planImport, PlannedRecord, samePerson } from './bundle-plan';
import { ImportReportModel } from './import.model';

/** Rows per INSERT statement (18 parameters each, well under PostgreSQL's 65,535). */
const INSERT_CHUNK = 500;
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
  ) {}

  async import(
    actor: Actor,
    bundle: unknown,
    patientId: string | null | undefined,
  ): Promise<ImportReportModel> {
    const { patientId: target, decision } = await this.access.decideWrite(
      actor,
      patientId,
      'patientId',
    );
    const plan = await planImport(bundle, target);
    if (plan.adopted) await this.refuseAnotherPatient(actor, plan.adopted, target);
    for (const r of plan.records) {
      // As createRecord: a grantee filing a record apart from its content's category would
      // slip it past the category scope of their own grant and of every other.
      if (r.refiled && decision.basis.kind !== 'self') {
        await this.access.logDenied(actor, decision, target, []);
        throw new ForbiddenError(
          `entry[${r.entry}]: only the patient can file a record under another category than the one it carries (its ${RECORD_CATEGORY_SYSTEM} tag); nothing was imported.`,
        );
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
      const read =
        decision.basis.kind === 'self' ? decision : await this.access.decide(actor, target);
      await this.refuseAnotherPerson(plan.records, target, (facts) =>
        this.access.admits(read, facts),
      );
    }
    const rows = await this.store(target, plan.records);
    // A clinician's import is one WRITE event citing the grant that covers it.
    if (decision.basis.kind === 'grants') {
      await this.access.logPermitted(actor, decision, target, rows);
    }
    // Committed: the answer need not wait for the ledger. Anchoring runs on (tracked, so that
    // shutdown waits for it); a record it does not anchor stays PENDING for the outbox, which
    // also picks up whatever a crash interrupted.
    const anchoring = this.anchorAll(rows).finally(() => this.anchoringNow.delete(anchoring));
    this.anchoringNow.add(anchoring);
    return {
      created: rows.length,
      skipped: plan.skipped,
      skippedTypes: plan.skippedTypes,
      recordIds: rows.map((r) => r.id),
    };
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
   */
  private async refuseAnotherPerson(
    records: PlannedRecord[],
    target: string,
    mayRead: (facts: RecordFacts) => boolean,
  ): Promise<void> {
    const incoming = records.filter((r) => r.resource.resourceType === 'Patient');
    if (!incoming.length) return;
    // Every stored Patient record of theirs the caller may read, opened (by the server, never
    // shown): compared with one the caller may not read, the answer would tell what it holds.
    const stored = (await this.records.openForDecision(target, ['Patient'], mayRead)).map(
      (r) => r.resource,
    );
    for (const r of incoming) {
      if (stored.some((s) => !samePerson(s, r.resource))) {
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

  /** Seals every record and inserts them all in one transaction. */
  private async store(patientId: string, records: PlannedRecord[]): Promise<RecordEntity[]> {
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
    return this.db.transaction(async (m) => {
      const dek = await this.keys.liveKey(patientId, m);
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
      for (let i = 0; i < records.length; i += INSERT_CHUNK) {
        const chunk: RecordEntity[] = [];
        for (const r of records.slice(i, i + INSERT_CHUNK)) {
          chunk.push(seal(r));
          // Sealing takes a tenth of a millisecond a record: other requests (and /health) get
          // their turn between a few dozen, not after the whole bundle.
          if (chunk.length % SEAL_BETWEEN_TURNS === 0) await setImmediate();
        }
        await repo.insert(chunk);
        rows.push(...chunk);
      }
      return rows;
    });
  }

  /**
   * Anchors the committed records, a bounded number at a time; one the ledger does not take
   * now stays PENDING for the outbox (anchorNow never throws).
   */
  private async anchorAll(rows: RecordEntity[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < rows.length && !this.stopping) {
        const row = rows[next++];
        await this.anchoring.anchorNow({
          id: row.id,
          version: row.version,
          patientId: row.patientId,
          contentHash: row.contentHash,
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(ANCHOR_CONCURRENCY, rows.length) }, worker));
  }
}
