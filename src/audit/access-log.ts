// The access log: one event per record-reading call, appended to a hash chain in PostgreSQL
// (a trigger refuses UPDATE and DELETE). Concurrent appends are grouped into one INSERT,
// so logging costs one commit per group rather than per read; a call returns only once its
// event is durable. The chain head is anchored on the ledger every N events or T ms
// (config.auditAnchor) and on graceful shutdown. A reason (free text) is sealed under the
// patient's data key before it is chained, so erasure leaves the chain whole and the text gone.
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DataSource } from 'typeorm';
import type { AuditHead } from '@custodia/chaincode';
import { NotFoundError } from '../common/errors';
import { decodeSeqCursor, encodeSeqCursor, pageSize } from '../common/pagination';
import { AppConfig, APP_CONFIG } from '../config';
import { arrayLiteral, type ArrayElement } from '../database/array-literal';
import { preparedQuery } from '../database/prepared';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import {
  DataKey,
  DataKeyRing,
  DataKeyUnavailableError,
  openField,
  sealField,
} from '../records/crypto';
import { AccessEventContent, AUDIT_GENESIS, auditChainId, eventHash } from './audit-chain';
import { AccessEventModel, AccessEventPageModel } from './access-event.model';

/** An event as callers give it: `reason` in plaintext (it is sealed before it is stored). */
export type NewAccessEvent = Omit<
  AccessEventContent,
  'seq' | 'id' | 'at' | 'reasonSealed' | 'reasonKeyId'
>;
type SealedEvent = Omit<AccessEventContent, 'seq' | 'at'>;

/** The field label a reason is sealed under, bound (with the event id) into its AEAD data. */
export const REASON_LABEL = 'access-event.reason';
/** Shutdown waits at most this long for the head to be anchored. */
const SHUTDOWN_ANCHOR_MS = 5_000;

/** An event chained: its content, the hash it follows and its own. */
interface ChainedRow {
  content: AccessEventContent;
  prevHash: string;
  hash: string;
}

/** A caller's events, written in the same INSERT, settled together. */
interface Queued {
  events: SealedEvent[];
  resolve(): void;
  reject(e: unknown): void;
}

@Injectable()
export class AccessLog implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AccessLog.name);
  private queue: Queued[] = [];
  /** Groups being sealed (their reasons' keys read): each settles once queued, or failed. */
  private readonly sealing = new Set<Promise<void>>();
  /** Events written behind the answer (recordBehind), until committed. */
  private readonly behind = new Set<Promise<void>>();
  private writing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private anchoring?: Promise<void>;
  /** The last event written by this process (re-read when another process got ahead). */
  private head?: { seq: number; hash: string };
  /** Emits 'anchored' ({seq, headHash, txId}) after each head anchored on the ledger. */
  readonly events = new EventEmitter();
  /** The ledger's name for this instance's chain (see `auditChainId`). */
  readonly chainId: string;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly keys: DataKeyRing,
    private readonly integrity: IntegrityMonitor,
    @Inject(APP_CONFIG)
    private readonly config: Pick<AppConfig, 'auditAnchor' | 'orgId' | 'instanceId'>,
  ) {
    this.chainId = auditChainId(config.instanceId);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.anchorHead(), this.config.auditAnchor.intervalMs);
    this.timer.unref();
  }

  /**
   * Drains the queue, then anchors the head, so that what this process logged becomes provable
   * (and a later deletion detectable). Bounded: a slow or broken ledger never hangs shutdown.
   */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.settled();
    while (this.writing) await this.writing;
    const anchored = (async () => {
      await this.anchoring;
      await this.anchorHead();
    })();
    let timeout: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timeout = setTimeout(() => resolve('late'), SHUTDOWN_ANCHOR_MS);
    });
    try {
      if ((await Promise.race([anchored, late])) === 'late') {
        this.logger.warn('audit head not anchored before shutdown; the next anchoring covers it');
      }
    } finally {
      clearTimeout(timeout);
    }
  }

  /** Appends an event; resolves once it is committed. */
  record(event: NewAccessEvent): Promise<void> {
    return this.recordGroup([event]);
  }

  /**
   * Appends an event without holding up the answer: for a refusal, which lets no data out, so
   * that a request refused for a record or patient that exists is answered as fast as one for
   * an id that does not (whose refusal has no one to be logged for). Readers of the log wait
   * for it (settled); a failure is logged, never thrown.
   */
  recordBehind(event: NewAccessEvent): void {
    const written: Promise<void> = this.record(event)
      .catch((e: unknown) => {
        this.logger.error(
          { errorType: (e as Error).name },
          'access event of a refusal not written',
        );
      })
      .finally(() => this.behind.delete(written));
    this.behind.add(written);
  }

  /**
   * Resolves once the events logged behind their answers so far are committed (or failed):
   * what a reader of the log must wait for, as every other event was committed before its
   * answer. Only those already appended: under steady traffic the queue is never empty.
   */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.behind]);
  }

  /**
   * Appends a group of events as one: they are chained and written together (one INSERT,
   * so all or none), and the promise resolves once every one is committed. For a caller that
   * logs many uses at once, such as a training node's patients in a round.
   */
  recordGroup(events: readonly NewAccessEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const queued = this.sealAll(events).then((sealed) => {
        this.queue.push({ events: sealed, resolve, reject });
        if (!this.writing) this.writing = this.drain();
      }, reject);
      this.sealing.add(queued);
      void queued.finally(() => this.sealing.delete(queued));
    });
  }

  /** The events sealed, each reason under its patient's data key. */
  private async sealAll(events: readonly NewAccessEvent[]): Promise<SealedEvent[]> {
    const withReason = events.filter((e) => e.reason !== null).map((e) => e.patientId);
    const keys = withReason.length
      ? await this.keys.liveKeys(withReason)
      : new Map<string, DataKey>();
    return events.map((e) => this.seal(e, keys.get(e.patientId)));
  }

  async page(
    patientId: string,
    first?: number | null,
    after?: string | null,
  ): Promise<AccessEventPageModel> {
    // Refusals logged behind their answers are the patient's to see at once.
    await this.settled();
    const size = pageSize(first);
    const before = decodeSeqCursor(after);
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT * FROM access_events WHERE patient_id = $1 AND ($2::bigint IS NULL OR seq < $2)
       ORDER BY seq DESC LIMIT $3`,
      [patientId, before ?? null, size + 1],
    );
    const items = await Promise.all(rows.slice(0, size).map((r) => this.toModel(r)));
    const last = rows[size - 1];
    return {
      items,
      nextCursor: rows.length > size && last ? encodeSeqCursor(Number(last.seq)) : null,
    };
  }

  /** Anchors the current chain head on the ledger, if it moved since the last anchor. */
  async anchorHead(): Promise<void> {
    if (this.anchoring) return this.anchoring;
    this.anchoring = (async () => {
      try {
        // The head includes the refusals already answered, whose events are written behind.
        await this.settled();
        const [head] = await this.db.query(
          `SELECT e.seq, e.hash FROM access_events e ORDER BY e.seq DESC LIMIT 1`,
        );
        if (!head) return;
        const [last] = await this.db.query(`SELECT max(seq) AS seq FROM audit_anchors`);
        if (last?.seq !== null && last?.seq !== undefined && Number(last.seq) >= Number(head.seq))
          return;
        if (!(await this.ledgerHeadIsOurs())) return;
        const { txId } = await this.ledger.submit('audit', 'AnchorAuditHead', [
          this.chainId,
          String(head.seq),
          head.hash,
        ]);
        await this.db.query(
          `INSERT INTO audit_anchors (seq, head_hash, ledger_tx_id, anchored_at)
           VALUES ($1, $2, $3, now()) ON CONFLICT (seq) DO NOTHING`,
          [head.seq, head.hash, txId],
        );
        this.events.emit('anchored', { seq: Number(head.seq), headHash: head.hash, txId });
      } catch (e) {
        this.logger.warn({ errorType: (e as Error).name }, 'audit head not anchored; will retry');
      } finally {
        this.anchoring = undefined;
      }
    })();
    return this.anchoring;
  }

  /**
   * Whether the head the ledger holds for this chain, if any, is an event of this log. It is not
   * when another instance of the organisation, with a database of its own, anchors under the
   * same chain id (both without INSTANCE_ID, or with the same one): anchoring over each other's
   * heads would make both logs fail verification, so this one stops anchoring and says why.
   */
  private async ledgerHeadIsOurs(): Promise<boolean> {
    let anchored: AuditHead;
    try {
      anchored = await this.ledger.evaluate<AuditHead>('audit', 'GetAuditHead', [
        this.config.orgId,
        this.chainId,
      ]);
    } catch (e) {
      if (e instanceof NotFoundError) return true;
      throw e;
    }
    const [event] = await this.db.query('SELECT hash FROM access_events WHERE seq = $1', [
      anchored.seq,
    ]);
    if (event?.hash === anchored.headHash) return true;
    this.integrity.report(
      'access_log',
      `audit head not anchored: the ledger's head of chain ${this.chainId} is not an event of ` +
        'this access log. Either another instance of this organisation anchors the same chain ' +
        '(give each instance with its own database its own INSTANCE_ID), or events were ' +
        'removed from this log (run verify-ledger).',
      { seq: anchored.seq },
    );
    return false;
  }

  /**
   * Gives the event its id and seals its reason, if any, under the patient's data key. Written
   * out member by member, every event of the same shape (a round logs hundreds at once).
   */
  private seal(event: NewAccessEvent, dek: DataKey | undefined): SealedEvent {
    const id = randomUUID();
    let reasonSealed: string | undefined;
    if (event.reason !== null) {
      if (!dek) throw new Error('no data key to seal an access event reason');
      reasonSealed = sealField(dek.key, REASON_LABEL, id, event.reason).toString('base64');
    }
    const sealed: SealedEvent = {
      id,
      actorId: event.actorId,
      patientId: event.patientId,
      recordIds: event.recordIds,
      action: event.action,
      purpose: event.purpose,
      decision: event.decision,
      consentId: event.consentId,
      breakGlass: event.breakGlass,
      reason: reasonSealed === undefined ? event.reason : null,
      reasonSealed,
      reasonKeyId: reasonSealed === undefined ? undefined : dek!.id,
      emergencyId: event.emergencyId,
      actorOrganizationId: event.actorOrganizationId,
    };
    return sealed;
  }

  /** A reason for the patient's eyes: null once erased (the key is gone) or if tampered with. */
  private async openReason(r: Record<string, unknown>): Promise<string | null> {
    const sealed = r.reason_sealed as Buffer | null;
    if (!sealed) return (r.reason as string | null) ?? null;
    try {
      const key = await this.keys.key(r.reason_key_id as string, r.patient_id as string);
      return openField(key, REASON_LABEL, r.id as string, sealed);
    } catch (e) {
      if (!(e instanceof DataKeyUnavailableError)) {
        this.integrity.report('access_log', 'access event reason failed to decrypt', {
          seq: Number(r.seq),
        });
      }
      return null;
    }
  }

  private async toModel(r: Record<string, unknown>): Promise<AccessEventModel> {
    return {
      id: r.id as string,
      actorId: r.actor_id as string,
      patientId: r.patient_id as string,
      recordIds: r.record_ids as string[],
      action: r.action as AccessEventModel['action'],
      purpose: r.purpose as string,
      decision: r.decision as AccessEventModel['decision'],
      consentId: (r.consent_id as string | null) ?? null,
      breakGlass: r.break_glass as boolean,
      reason: await this.openReason(r),
      at: r.at as Date,
      hash: r.hash as string,
    };
  }

  private async drain(): Promise<void> {
    try {
      // Groups still reading their keys when a write begins join it rather than the next
      // one: a round's nodes log at once, and each INSERT waits for the one before it.
      await this.sealed();
      while (this.queue.length) {
        const batch = this.queue;
        this.queue = [];
        let crossed = false;
        try {
          crossed = await this.append(batch.flatMap((q) => q.events));
          batch.forEach((q) => q.resolve());
        } catch (e) {
          this.logger.error({ errorType: (e as Error).name }, 'access events not written');
          batch.forEach((q) => q.reject(e));
        }
        // A break-glass access is anchored at once: until its head is on the ledger, someone
        // who can write the database could delete it without a trace.
        const breakGlass = batch.some((q) => q.events.some((e) => e.breakGlass));
        if (crossed || breakGlass) void this.anchorHead();
        await this.sealed();
      }
    } finally {
      this.writing = undefined;
    }
  }

  /** Settles once the groups being sealed now are queued (or failed); later ones not awaited. */
  private async sealed(): Promise<void> {
    if (this.sealing.size) await Promise.all([...this.sealing]);
  }

  /**
   * Writes a group of events as one INSERT (atomic on its own); true when it crossed an
   * anchoring mark. The chain head is kept in memory: if another process appended since,
   * the sequence number collides, and the head is re-read and the group chained again.
   */
  private async append(events: SealedEvent[]): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      this.head ??= await this.readHead();
      const head = this.head;
      let seq = head.seq;
      let prev = head.hash;
      const at = new Date().toISOString();
      const rows = events.map((e) => {
        const content: AccessEventContent = {
          seq: ++seq,
          id: e.id,
          actorId: e.actorId,
          patientId: e.patientId,
          recordIds: e.recordIds,
          action: e.action,
          purpose: e.purpose,
          decision: e.decision,
          consentId: e.consentId,
          breakGlass: e.breakGlass,
          reason: e.reason,
          reasonSealed: e.reasonSealed,
          reasonKeyId: e.reasonKeyId,
          at,
          emergencyId: e.emergencyId,
          actorOrganizationId: e.actorOrganizationId,
        };
        const hash = eventHash(prev, content);
        const row: ChainedRow = { content, prevHash: prev, hash };
        prev = hash;
        return row;
      });
      try {
        await this.insert(rows);
      } catch (e) {
        this.head = undefined;
        if ((e as { code?: string }).code === '23505' && attempt < 5) continue;
        throw e;
      }
      this.head = { seq, hash: prev };
      const every = this.config.auditAnchor.everyEvents;
      return Math.floor(head.seq / every) !== Math.floor(seq / every);
    }
  }

  private async readHead(): Promise<{ seq: number; hash: string }> {
    const [head] = await this.db.query(
      'SELECT seq, hash FROM access_events ORDER BY seq DESC LIMIT 1',
    );
    return head ? { seq: Number(head.seq), hash: head.hash } : { seq: 0, hash: AUDIT_GENESIS };
  }

  private async insert(rows: readonly ChainedRow[]) {
    // Each column as an array literal written here (database/array-literal.ts): node-postgres's
    // own took a fifth of a 2,000-event append.
    const col = <K extends keyof AccessEventContent>(k: K) =>
      arrayLiteral(rows.map((r) => r.content[k] as ArrayElement));
    const each = (f: (r: ChainedRow) => ArrayElement) => arrayLiteral(rows.map(f));
    await preparedQuery(
      this.db,
      `INSERT INTO access_events (seq, id, actor_id, patient_id, record_ids, action, purpose,
         decision, consent_id, break_glass, reason, reason_sealed, reason_key_id, at, prev_hash,
         hash, emergency_id, actor_org)
       SELECT u.seq, u.id, u.actor_id, u.patient_id, string_to_array(u.record_ids, ',')::uuid[],
              u.action, u.purpose, u.decision, u.consent_id, u.break_glass, u.reason,
              decode(u.reason_sealed, 'base64'), u.reason_key_id, u.at, u.prev_hash, u.hash,
              u.emergency_id, u.actor_org
       FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[],
                   $7::text[], $8::text[], $9::text[], $10::boolean[], $11::text[],
                   $12::text[], $13::uuid[], $14::timestamptz[], $15::text[], $16::text[],
                   $17::uuid[], $18::text[])
         AS u(seq, id, actor_id, patient_id, record_ids, action, purpose, decision, consent_id,
              break_glass, reason, reason_sealed, reason_key_id, at, prev_hash, hash,
              emergency_id, actor_org)`,
      [
        col('seq'),
        col('id'),
        col('actorId'),
        col('patientId'),
        each((r) => r.content.recordIds.join(',')),
        col('action'),
        col('purpose'),
        col('decision'),
        col('consentId'),
        col('breakGlass'),
        col('reason'),
        // As the chain holds it (base64), decoded by the database: no copy and hex here.
        each((r) => r.content.reasonSealed ?? null),
        each((r) => r.content.reasonKeyId ?? null),
        col('at'),
        each((r) => r.prevHash),
        each((r) => r.hash),
        each((r) => r.content.emergencyId ?? null),
        each((r) => r.content.actorOrganizationId ?? null),
      ],
    );
  }
}
