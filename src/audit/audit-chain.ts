// The access log's hash chain, as pure functions: each event's hash covers the previous
// event's hash and the event's own canonical content, so no event can be changed, removed
// or inserted without breaking every hash after it.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';

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
  reason: string | null;
  /** ISO instant, millisecond precision. */
  at: string;
  /** The emergency (on the ledger) a break-glass access was made under; absent otherwise. */
  emergencyId?: string;
  /** The actor's organisation, which an ORGANIZATION grant names; absent when none. */
  actorOrganizationId?: string;
}

export function eventHash(prevHash: string, event: AccessEventContent): string {
  return createHash('sha256')
    .update('custodia/access-event/v1')
    .update(prevHash)
    .update(canonicalize(event)!)
    .digest('hex');
}

export interface ChainedEvent extends AccessEventContent {
  prevHash: string;
  hash: string;
}

/** The first break in a run of events that should continue `prevHash`, or null. */
export function findBreak(prevHash: string, events: ChainedEvent[]): string | null {
  let expectedPrev = prevHash;
  let expectedSeq: number | undefined;
  for (const e of events) {
    if (expectedSeq !== undefined && e.seq !== expectedSeq) {
      return `access event ${expectedSeq} is missing (found ${e.seq} next)`;
    }
    if (e.prevHash !== expectedPrev)
      return `access event ${e.seq} does not link to its predecessor`;
    const { prevHash: _p, hash, ...content } = e;
    if (eventHash(e.prevHash, content) !== hash)
      return `access event ${e.seq}: its content does not match its hash`;
    expectedPrev = hash;
    expectedSeq = e.seq + 1;
  }
  return null;
}

/** An access_events row as the chain functions see it. */
export function chainedEventFromRow(r: Record<string, unknown>): ChainedEvent {
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
    at: (r.at as Date).toISOString(),
    // Absent, not null, when unset: events from before these fields hash as they always did.
    emergencyId: (r.emergency_id as string | null) ?? undefined,
    actorOrganizationId: (r.actor_org as string | null) ?? undefined,
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}
