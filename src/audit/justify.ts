// Checks that each PERMIT in the access log was justified by what the ledger held at that
// instant: the grant it cites existed, named this actor (or their organisation, or the study),
// purpose and action, and was in force; or the emergency it cites was declared on the ledger
// by this clinician for this patient and had neither run out nor been ended by the patient
// turning emergency access off. A patient's own reads are justified by their account's link to
// the patient. Given the records' labels, the records a PERMIT under a grant names are also
// held to the grant's record filters (resource types, categories, restricted): a read the rule
// would not have allowed, logged faithfully by a policy decision gone wrong, is found.
import type {
  EmergencyAccessSetting,
  EmergencyRecord,
  GrantRecord,
  PatientKeyring,
  SignedOnlyPeriod,
} from '@custodia/chaincode';
import {
  emergencyEndedBy,
  failedRecordFilter,
  offPeriodsOf,
  recordAllowed,
  type ChoicePeriod,
  type RecordFacts,
  type RecordFilter,
} from '@custodia/chaincode/policy';
import { NotFoundError } from '../common/errors';
import { isUuid } from '../common/ids';
import type { Ledger } from '../ledger';
import type { AccessEventContent } from './audit-chain';
import type { QueryRows } from './verify';

/**
 * How long after a revocation's (or an expiry's) transaction time a logged read may still be
 * justified: the decision was made before the revocation committed, and the event is stamped
 * when it is appended. Ledger commits take milliseconds embedded and seconds on Fabric.
 */
export const COMMIT_ALLOWANCE_MS = 10_000;

/** What the ledger holds, as the justification needs it; null when it holds nothing. */
export interface LedgerAuthority {
  grant(id: string): Promise<GrantRecord | null>;
  emergency(id: string): Promise<EmergencyRecord | null>;
  /** When the patient accepted only signed grants (empty when never, or not recorded). */
  signedOnlyPeriods(patientId: string): Promise<readonly SignedOnlyPeriod[]>;
  /** When the patient had turned emergency access off (empty when never). */
  emergencyOffPeriods(patientId: string): Promise<readonly ChoicePeriod[]>;
}

/** Reads grants and emergencies from the ledger, each once per verification. */
export function ledgerAuthority(ledger: Pick<Ledger, 'evaluate'>): LedgerAuthority {
  const cache = new Map<string, Promise<unknown>>();
  const read = <T>(fn: string, id: string): Promise<T | null> => {
    const key = `${fn}/${id}`;
    let hit = cache.get(key) as Promise<T | null> | undefined;
    if (!hit) {
      hit = ledger.evaluate<T>('consent', fn, [id]).catch((e: unknown) => {
        if (e instanceof NotFoundError) return null;
        throw e;
      });
      cache.set(key, hit);
    }
    return hit;
  };
  const keyrings = new Map<string, Promise<readonly SignedOnlyPeriod[]>>();
  const emergencySettings = new Map<string, Promise<readonly ChoicePeriod[]>>();
  return {
    grant: (id) => read<GrantRecord>('GetConsent', id),
    emergency: (id) => read<EmergencyRecord>('GetEmergency', id),
    signedOnlyPeriods: (patientId) => {
      let periods = keyrings.get(patientId);
      if (!periods) {
        periods = ledger
          .evaluate<PatientKeyring>('keys', 'GetPatientKeys', [patientId])
          .then((ring) => ring.signedOnlyPeriods ?? []);
        keyrings.set(patientId, periods);
      }
      return periods;
    },
    emergencyOffPeriods: (patientId) => {
      let periods = emergencySettings.get(patientId);
      if (!periods) {
        periods = ledger
          .evaluate<EmergencyAccessSetting>('consent', 'GetEmergencyAccess', [patientId])
          .then(offPeriodsOf);
        emergencySettings.set(patientId, periods);
      }
      return periods;
    },
  };
}

/**
 * The period during which the patient accepted only signed grants at `at`, if any: from the
 * commit allowance after it was turned on (a decision made just before may be stamped after)
 * until it was turned off.
 */
async function signedOnlyAt(
  authority: LedgerAuthority,
  patientId: string,
  at: number,
): Promise<SignedOnlyPeriod | undefined> {
  const periods = await authority.signedOnlyPeriods(patientId);
  return periods.find(
    (p) =>
      at >= Date.parse(p.from) + COMMIT_ALLOWANCE_MS &&
      (p.until === null || at < Date.parse(p.until)),
  );
}

/** The justified PERMITs that rest on one grant the patient did not sign. */
export interface UnsignedGrantUse {
  patientId: string;
  permits: number;
  /** The events' sequence numbers, the first `MAX_SEQS_KEPT` of them. */
  seqs: number[];
}

/** How many event numbers are kept per unsigned grant (a report lists a few, then counts). */
export const MAX_SEQS_KEPT = 20;

export interface PermitCheck {
  permits: number;
  justified: number;
  /** Justified PERMITs whose grant the patient signed (verified by the chaincode). */
  patientSigned: number;
  /** Justified PERMITs under a grant the patient did not sign, by grant id. */
  unsigned: Map<string, UnsignedGrantUse>;
  problems: string[];
}

/** Whether the grant behind a PERMIT was patient-signed, as the ledger records it; null when
 * no grant on the ledger stands behind the event (a DENY, a break-glass access, the patient's
 * own read, or a grant the ledger does not hold). */
export async function grantPatientSigned(
  e: Pick<AccessEventContent, 'decision' | 'purpose' | 'breakGlass' | 'consentId'>,
  authority: LedgerAuthority,
): Promise<boolean | null> {
  if (e.decision !== 'PERMIT' || e.purpose === 'SELF' || e.breakGlass || !e.consentId) return null;
  const grant = await authority.grant(e.consentId);
  return grant ? grant.patientSigned === true : null;
}

/** One version of a record: when it was written (epoch ms), and its labels. */
export interface LabelledVersion {
  from: number;
  patientId: string;
  facts: RecordFacts;
}

/**
 * The versions of the given records, each record's in the order they were written; a record
 * absent from the map is gone (deleted with its patient's erasure) and is not judged.
 */
export type RecordLabels = (
  recordIds: readonly string[],
) => Promise<Map<string, LabelledVersion[]>>;

/** How many records' labels one query reads. */
const LABELS_CHUNK = 5_000;

/** How many record ids a problem names before it counts the rest. */
const RECORDS_NAMED = 3;

const emptyCheck = (): PermitCheck => ({
  permits: 0,
  justified: 0,
  patientSigned: 0,
  unsigned: new Map(),
  problems: [],
});

/**
 * Checks every PERMIT among `events` against the ledger. `isSelf` answers whether an actor's
 * account is the patient's own (for the patient's own reads).
 */
export async function justifyPermits(
  events: Iterable<AccessEventContent>,
  authority: LedgerAuthority,
  isSelf: (actorId: string, patientId: string) => Promise<boolean>,
  labels?: RecordLabels,
): Promise<PermitCheck> {
  const check = emptyCheck();
  const list = [...events];
  // The labels of every record a PERMIT under a grant names, read at once.
  const versions = labels
    ? await labels([...new Set(list.filter(restsOnGrant).flatMap((e) => e.recordIds))])
    : undefined;
  for (const e of list) {
    if (e.decision !== 'PERMIT') continue;
    check.permits++;
    let problem = await unjustified(e, authority, isSelf);
    if (!problem && versions && restsOnGrant(e)) {
      problem = outsideFilters(e, (await authority.grant(e.consentId!))!, versions);
    }
    const signed = problem ? null : await grantPatientSigned(e, authority);
    // An unsigned grant counts for nothing while the patient accepts only signed ones.
    if (signed === false && (await signedOnlyAt(authority, e.patientId, Date.parse(e.at)))) {
      problem = `grant ${e.consentId} is unsigned, and the patient accepted only signed grants at ${e.at}`;
    }
    if (problem) {
      check.problems.push(`access event ${e.seq} (${e.action} by ${e.actorId}): ${problem}`);
      continue;
    }
    check.justified++;
    if (signed) check.patientSigned++;
    else if (signed === false) addUnsigned(check.unsigned, e.consentId!, e.patientId, 1, [e.seq]);
  }
  return check;
}

function addUnsigned(
  into: Map<string, UnsignedGrantUse>,
  grantId: string,
  patientId: string,
  permits: number,
  seqs: number[],
): void {
  const use = into.get(grantId) ?? { patientId, permits: 0, seqs: [] };
  use.permits += permits;
  use.seqs.push(...seqs.slice(0, MAX_SEQS_KEPT - use.seqs.length));
  into.set(grantId, use);
}

/** A PERMIT that cites a grant (not the patient's own read, not a break-glass one). */
function restsOnGrant(e: AccessEventContent): boolean {
  return e.decision === 'PERMIT' && e.purpose !== 'SELF' && !e.breakGlass && !!e.consentId;
}

/**
 * The records of a PERMIT under grant `g` that the grant's record filters did not allow, as a
 * problem; null when every one was allowed. A record is judged by the labels it had when it
 * was read: those of the version current a commit allowance before the event was stamped, or
 * of any version written since (an amendment may land between the decision and the stamp).
 * Nothing is said of what the records hold: only which filter each failed.
 */
function outsideFilters(
  e: AccessEventContent,
  g: GrantRecord,
  versions: ReadonlyMap<string, readonly LabelledVersion[]>,
): string | null {
  const at = Date.parse(e.at);
  const outside: string[] = [];
  for (const id of e.recordIds) {
    const written = versions.get(id);
    if (!written?.length) continue;
    if (written[0].patientId !== e.patientId) {
      outside.push(`${id} (another patient's)`);
      continue;
    }
    const read = versionsReadAt(written, at);
    if (!read.some((v) => recordAllowed(g, v.facts))) {
      outside.push(`${id} (${FILTER_WORDS[failedRecordFilter(g, read[read.length - 1].facts)!]})`);
    }
  }
  if (!outside.length) return null;
  const more = outside.length > RECORDS_NAMED ? ` and ${outside.length - RECORDS_NAMED} more` : '';
  return `${outside.length} of its ${e.recordIds.length} record(s) lay outside what grant ${g.id} allows: ${outside.slice(0, RECORDS_NAMED).join(', ')}${more}`;
}

/** The versions a read stamped at `at` may have seen (never empty for a non-empty list). */
export function versionsReadAt(written: readonly LabelledVersion[], at: number): LabelledVersion[] {
  const since = at - COMMIT_ALLOWANCE_MS;
  let current = 0;
  for (let i = 0; i < written.length && written[i].from <= since; i++) current = i;
  return written.filter((v, i) => i === current || (v.from > since && v.from <= at));
}

/** A failed record filter, as a problem names it. */
const FILTER_WORDS: Record<RecordFilter, string> = {
  resourceType: 'its resource type',
  category: 'its category',
  sensitivity: 'restricted',
};

/** Why the event is not justified, or null when it is. */
async function unjustified(
  e: AccessEventContent,
  authority: LedgerAuthority,
  isSelf: (actorId: string, patientId: string) => Promise<boolean>,
): Promise<string | null> {
  const at = Date.parse(e.at);
  if (e.purpose === 'SELF') {
    return (await isSelf(e.actorId, e.patientId))
      ? null
      : "a read as the patient by an account that is not the patient's";
  }
  if (e.breakGlass) {
    if (!e.emergencyId) return 'a break-glass access that cites no emergency';
    const em = await authority.emergency(e.emergencyId);
    if (!em) return `emergency ${e.emergencyId} is not on the ledger`;
    if (em.patientId !== e.patientId || em.clinicianId !== e.actorId) {
      return `emergency ${e.emergencyId} was declared for another clinician or patient`;
    }
    if (e.action !== 'READ') return `emergency ${e.emergencyId} allows reading only`;
    if (at < Date.parse(em.declaredAt) || at >= Date.parse(em.expiresAt) + COMMIT_ALLOWANCE_MS) {
      return `emergency ${e.emergencyId} was not in force at ${e.at}`;
    }
    // The API stops honouring an emergency the patient's opt-out ended at once; a read decided
    // just before may be stamped within the allowance.
    const ended = emergencyEndedBy(
      await authority.emergencyOffPeriods(e.patientId),
      em.declaredAt,
      at - COMMIT_ALLOWANCE_MS,
    );
    if (ended) {
      return `emergency ${e.emergencyId} had ended at ${ended.from}, when the patient turned emergency access off`;
    }
    return null;
  }
  if (!e.consentId) return 'a permitted access that cites no grant or emergency';
  const g = await authority.grant(e.consentId);
  if (!g) return `grant ${e.consentId} is not on the ledger`;
  if (g.patientId !== e.patientId) return `grant ${e.consentId} is another patient's`;
  if (g.purpose !== e.purpose || !g.actions.includes(e.action as never)) {
    return `grant ${e.consentId} does not allow ${e.action} for ${e.purpose}`;
  }
  const grantee =
    g.grantee.type === 'CLINICIAN'
      ? g.grantee.id === e.actorId
      : g.grantee.type === 'ORGANIZATION'
        ? g.grantee.id === e.actorOrganizationId
        : e.action === 'TRAIN';
  if (!grantee) return `grant ${e.consentId} names another grantee`;
  const after = (t: string | null | undefined) =>
    t !== null && t !== undefined && at >= Date.parse(t) + COMMIT_ALLOWANCE_MS;
  if (at < Date.parse(g.createdAt) || at < Date.parse(g.validFrom) || after(g.validUntil)) {
    return `grant ${e.consentId} was not in force at ${e.at}`;
  }
  if (after(g.revokedAt)) return `grant ${e.consentId} had been revoked by ${e.at}`;
  return null;
}

/**
 * Checks the PERMITs of the pages of the access log it is given (as `checkAccessLog` walks
 * them), one patient's or everyone's, against the ledger. The chain is checked by the walk;
 * this asks whether what it holds was allowed.
 */
export class PermitJustifier {
  private readonly authority: LedgerAuthority;
  private readonly selves = new Map<string, Promise<boolean>>();
  private readonly total = emptyCheck();

  constructor(
    private readonly query: QueryRows,
    ledger: Pick<Ledger, 'evaluate'>,
    private readonly patientId?: string,
  ) {
    this.authority = ledgerAuthority(ledger);
  }

  async check(events: readonly AccessEventContent[]): Promise<void> {
    const mine = this.patientId ? events.filter((e) => e.patientId === this.patientId) : events;
    const check = await justifyPermits(
      mine,
      this.authority,
      (a, p) => this.isSelf(a, p),
      (ids) => this.labels(ids),
    );
    this.total.permits += check.permits;
    this.total.justified += check.justified;
    this.total.patientSigned += check.patientSigned;
    for (const [id, use] of check.unsigned) {
      addUnsigned(this.total.unsigned, id, use.patientId, use.permits, use.seqs);
    }
    this.total.problems.push(...check.problems);
  }

  result(): PermitCheck {
    return this.total;
  }

  /** Every version's labels of the given records (current and superseded), oldest first. */
  private async labels(recordIds: readonly string[]): Promise<Map<string, LabelledVersion[]>> {
    const found = new Map<string, LabelledVersion[]>();
    for (let i = 0; i < recordIds.length; i += LABELS_CHUNK) {
      const rows = await this.query(
        `SELECT id AS record_id, version, patient_id, resource_type, category, sensitivity,
                updated_at FROM records WHERE id = ANY($1::uuid[])
         UNION ALL
         SELECT record_id, version, patient_id, resource_type, category, sensitivity,
                updated_at FROM record_versions WHERE record_id = ANY($1::uuid[])
         ORDER BY record_id, version`,
        [recordIds.slice(i, i + LABELS_CHUNK).filter(isUuid)],
      );
      for (const r of rows) {
        const id = String(r.record_id);
        const version: LabelledVersion = {
          from: new Date(r.updated_at as string | Date).getTime(),
          patientId: String(r.patient_id),
          facts: {
            resourceType: r.resource_type as string,
            category: (r.category as string | null) ?? null,
            sensitivity: r.sensitivity as RecordFacts['sensitivity'],
          },
        };
        const list = found.get(id);
        if (list) list.push(version);
        else found.set(id, [version]);
      }
    }
    return found;
  }

  /** The account is linked to the patient; or the patient was erased, which unlinks it. */
  private isSelf(actorId: string, patientId: string): Promise<boolean> {
    const key = JSON.stringify([actorId, patientId]);
    let self = this.selves.get(key);
    if (!self) {
      self = this.query(
        `SELECT EXISTS (SELECT 1 FROM users WHERE subject = $1 AND patient_id = $2)
             OR EXISTS (SELECT 1 FROM patients WHERE id = $2 AND erased_at IS NOT NULL) AS self`,
        [actorId, patientId],
      ).then((rows) => rows[0]?.self === true);
      this.selves.set(key, self);
    }
    return self;
  }
}
