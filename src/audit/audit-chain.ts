// The access log's hash chain, as pure functions: each event's hash covers the previous
// event's hash and the event's own canonical content, so no event can be changed, removed
// or inserted without breaking every hash after it.
//
// Free text (an emergency's reason) is stored sealed under the patient's data key and the
// hash covers the ciphertext, so crypto-shredding leaves the chain whole and the text gone.
// Events written before that carry `reason` in plaintext and no `reasonSealed`; as JCS omits
// absent keys, their v1 hashes are unchanged.
import canonicalize from 'canonicalize';
import { hash } from 'node:crypto';

export const AUDIT_GENESIS = '0'.repeat(64);

export interface AccessEventContent {
  seq: number;
  id: string;
  actorId: string;
  patientId: string;
  recordIds: string[];
  action: string;
  purpose: string;
  decision: 'PERMIT' | 'DENY';
  consentId: string | null;
  breakGlass: boolean;
  /** Plaintext reason: only in events logged before reasons were sealed; null since. */
  reason: string | null;
  /** The reason sealed under the patient's data key (base64 of iv ‖ tag ‖ ciphertext). */
  reasonSealed?: string;
  /** The id of the data key that sealed `reasonSealed`. */
  reasonKeyId?: string;
  /** ISO instant, millisecond precision. */
  at: string;
  /** The emergency (on the ledger) a break-glass access was made under; absent otherwise. */
  emergencyId?: string;
  /** The actor's organisation, which an ORGANIZATION grant names; absent when none. */
  actorOrganizationId?: string;
}

export function eventHash(prevHash: string, event: AccessEventContent): string {
  return hash('sha256', `custodia/access-event/v1${prevHash}${canonicalEvent(event)}`, 'hex');
}

/** An event's members in JCS order (all ASCII, so UTF-16 code-unit order is plain order). */
const EVENT_MEMBERS = [
  'action',
  'actorId',
  'actorOrganizationId',
  'at',
  'breakGlass',
  'consentId',
  'decision',
  'emergencyId',
  'id',
  'patientId',
  'purpose',
  'reason',
  'reasonKeyId',
  'reasonSealed',
  'recordIds',
  'seq',
] as const satisfies readonly (keyof AccessEventContent)[];
const KNOWN_MEMBERS = new Set<string>(EVENT_MEMBERS);

/**
 * The JCS (RFC 8785) text of an event, as `canonicalize` gives it. An event of the usual shape
 * (its known members, holding strings, booleans, finite numbers, null or lists of strings),
 * which is every event the log writes and reads back, is one JSON.stringify of its members
 * copied in JCS order: for such values JSON.stringify writes what JCS does, and leaves out
 * absent (undefined) members as JCS does. Anything else is handed to `canonicalize`.
 */
export function canonicalEvent(event: AccessEventContent): string {
  const e = event as unknown as Record<string, unknown>;
  for (const k in e) {
    if (!KNOWN_MEMBERS.has(k) && e[k] !== undefined) return canonicalize(event)!;
  }
  if (
    !plain(e.action) ||
    !plain(e.actorId) ||
    !plain(e.actorOrganizationId) ||
    !plain(e.at) ||
    !plain(e.breakGlass) ||
    !plain(e.consentId) ||
    !plain(e.decision) ||
    !plain(e.emergencyId) ||
    !plain(e.id) ||
    !plain(e.patientId) ||
    !plain(e.purpose) ||
    !plain(e.reason) ||
    !plain(e.reasonKeyId) ||
    !plain(e.reasonSealed) ||
    !(plain(e.recordIds) || strings(e.recordIds)) ||
    !plain(e.seq)
  ) {
    return canonicalize(event)!;
  }
  // Literal order is JCS order (EVENT_MEMBERS); JSON.stringify keeps it for string keys.
  return JSON.stringify({
    action: e.action,
    actorId: e.actorId,
    actorOrganizationId: e.actorOrganizationId,
    at: e.at,
    breakGlass: e.breakGlass,
    consentId: e.consentId,
    decision: e.decision,
    emergencyId: e.emergencyId,
    id: e.id,
    patientId: e.patientId,
    purpose: e.purpose,
    reason: e.reason,
    reasonKeyId: e.reasonKeyId,
    reasonSealed: e.reasonSealed,
    recordIds: e.recordIds,
    seq: e.seq,
  });
}

/** A value JSON.stringify writes as JCS does, or leaves out as JCS does (undefined). */
function plain(v: unknown): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return Number.isFinite(v);
    default:
      return v === null;
  }
}

function strings(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (const x of v) if (typeof x !== 'string') return false;
  return true;
}

export interface ChainedEvent extends AccessEventContent {
  prevHash: string;
  hash: string;
}

/** The first break in a run of events that should continue `prevHash`, or null. */
export function findBreak(prevHash: string, events: ChainedEvent[]): string | null {
  return firstBreak(prevHash, undefined, events)?.problem ?? null;
}

/** Where (index into `events`) and how a run of events first fails to continue the chain. */
function firstBreak(
  prevHash: string,
  firstSeq: number | undefined,
  events: ChainedEvent[],
): { index: number; problem: string } | null {
  let expectedPrev = prevHash;
  let expectedSeq = firstSeq;
  for (const [index, e] of events.entries()) {
    if (expectedSeq !== undefined && e.seq !== expectedSeq) {
      return { index, problem: `access event ${expectedSeq} is missing (found ${e.seq} next)` };
    }
    if (e.prevHash !== expectedPrev)
      return { index, problem: `access event ${e.seq} does not link to its predecessor` };
    const { prevHash: _p, hash, ...content } = e;
    if (eventHash(e.prevHash, content) !== hash)
      return { index, problem: `access event ${e.seq}: its content does not match its hash` };
    expectedPrev = hash;
    expectedSeq = e.seq + 1;
  }
  return null;
}

/** The chain id of the single instance an organisation runs, and of instances before INSTANCE_ID. */
export const AUDIT_CHAIN_ID = 'access-log';

/**
 * The id under which an instance anchors its access log on the ledger. The ledger keys heads
 * by organisation and chain id, and each instance with its own database has its own chain, so
 * instances of one organisation need distinct ids: `access-log.<INSTANCE_ID>`. Without an
 * instance id it is `access-log`, as it always was (an organisation's single instance keeps
 * the heads it anchored). Processes sharing one database share its chain and its id.
 */
export function auditChainId(instanceId?: string): string {
  return instanceId ? `${AUDIT_CHAIN_ID}.${instanceId}` : AUDIT_CHAIN_ID;
}

/** Which anchored chain an access log is checked against: whose, and which of theirs. */
export interface AuditChainRef {
  organization: string;
  chainId: string;
}

/** The latest head of a chain anchored on the ledger (the only authority on the log). */
export interface AnchoredHead {
  seq: number;
  headHash: string;
}

/** What a walk of the access log proved, for `verify-ledger` and the patient's own check. */
export interface AccessLogVerification {
  /** Events walked with the chain intact (only the patient's, in a per-patient view). */
  eventsChecked: number;
  /** The seq of the head the ledger anchored, or null when it holds none. */
  anchoredThrough: number | null;
  /** Intact events after the anchored head: whole, but not yet provable against the ledger. */
  unanchoredEvents: number;
  /** One line per break; none means the log is whole through the anchored head. */
  problems: string[];
}

/**
 * Walks the one global chain from genesis, page by page, and checks it against the head the
 * ledger anchored: that event must be in the log with the same hash, and every event before
 * it must be there and link. Pages go on being fed after a break, so the anchored event is
 * still looked for. With `patientId`, only that patient's events are counted.
 */
export class ChainWalk {
  private prev = AUDIT_GENESIS;
  private lastSeq = 0;
  private broken: string | null = null;
  private hashAtAnchor?: string;
  private checked = 0;
  private unanchored = 0;
  private fedThrough = 0;

  constructor(
    private readonly anchored: AnchoredHead | null,
    private readonly patientId?: string,
  ) {}

  /** The last seq fed, intact or not: the next page starts after it. */
  get lastFed(): number {
    return this.fedThrough;
  }

  /** The next events, in seq order. */
  feed(events: ChainedEvent[]): void {
    for (const e of events) if (e.seq === this.anchored?.seq) this.hashAtAnchor = e.hash;
    let intact = events;
    if (!this.broken) {
      const found = firstBreak(this.prev, this.lastSeq + 1, events);
      if (found) {
        this.broken = found.problem;
        intact = events.slice(0, found.index);
      }
      for (const e of intact) {
        if (this.patientId !== undefined && e.patientId !== this.patientId) continue;
        this.checked++;
        if (e.seq > (this.anchored?.seq ?? 0)) this.unanchored++;
      }
      const last = intact[intact.length - 1];
      if (last) {
        this.prev = last.hash;
        this.lastSeq = last.seq;
      }
    }
    if (events.length) this.fedThrough = events[events.length - 1].seq;
  }

  result(): AccessLogVerification {
    const problems: string[] = [];
    if (this.broken)
      problems.push(`${this.broken}; the access log cannot be trusted from there on`);
    const a = this.anchored;
    if (a && this.hashAtAnchor === undefined) {
      const gap =
        !this.broken && this.lastSeq + 1 < a.seq
          ? ` (events ${this.lastSeq + 1}–${a.seq} are missing)`
          : '';
      problems.push(
        `access event ${a.seq} was anchored on the ledger but is gone from the log${gap}`,
      );
    } else if (a && this.hashAtAnchor !== a.headHash) {
      problems.push(`access event ${a.seq} differs from the head anchored on the ledger`);
    }
    return {
      eventsChecked: this.checked,
      anchoredThrough: a?.seq ?? null,
      unanchoredEvents: this.unanchored,
      problems,
    };
  }
}

/** An access_events row as the chain functions see it. */
export function chainedEventFromRow(r: Record<string, unknown>): ChainedEvent {
  const sealed = r.reason_sealed as Buffer | null | undefined;
  return {
    seq: Number(r.seq),
    id: r.id as string,
    actorId: r.actor_id as string,
    patientId: r.patient_id as string,
    recordIds: r.record_ids as string[],
    action: r.action as string,
    purpose: r.purpose as string,
    decision: r.decision as ChainedEvent['decision'],
    consentId: (r.consent_id as string | null) ?? null,
    breakGlass: r.break_glass as boolean,
    reason: (r.reason as string | null) ?? null,
    ...(sealed
      ? { reasonSealed: sealed.toString('base64'), reasonKeyId: r.reason_key_id as string }
      : {}),
    at: (r.at as Date).toISOString(),
    // Absent, not null, when unset: events from before these fields hash as they always did.
    emergencyId: (r.emergency_id as string | null) ?? undefined,
    actorOrganizationId: (r.actor_org as string | null) ?? undefined,
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}
