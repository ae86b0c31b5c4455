// The consent rule of ARCHITECTURE section 5, as pure functions with no Fabric import.
// The chaincode's CheckAccess and the API's policy decision point both use these; there is
// never a second copy of the rule.

export const GRANTEE_TYPES = ['CLINICIAN', 'ORGANIZATION', 'STUDY'] as const;
export const PURPOSES = ['TREATMENT', 'RESEARCH'] as const;
export const ACTIONS = ['READ', 'WRITE', 'TRAIN'] as const;
export const SENSITIVITIES = ['NORMAL', 'RESTRICTED'] as const;
/** How long a declared emergency (break-glass) lets a clinician read. */
export const EMERGENCY_MINUTES = 60;

export type GranteeType = (typeof GRANTEE_TYPES)[number];
export type Purpose = (typeof PURPOSES)[number];
export type Action = (typeof ACTIONS)[number];
export type Sensitivity = (typeof SENSITIVITIES)[number];
/** Stored as ACTIVE or REVOKED; a grant read after its `validUntil` reads as EXPIRED. */
export type GrantStatus = 'ACTIVE' | 'REVOKED' | 'EXPIRED';

export interface Grantee {
  type: GranteeType;
  id: string;
}

export interface ConsentGrant {
  id: string;
  patientId: string;
  grantee: Grantee;
  purpose: Purpose;
  actions: Action[];
  /** Empty means every resource type. */
  resourceTypes: string[];
  /** Empty means every category. */
  categories: string[];
  includeRestricted: boolean;
  /** ISO-8601 instants. */
  validFrom: string;
  validUntil?: string | null;
  status: GrantStatus;
  revokedAt?: string | null;
}

export interface RequestActor {
  id: string;
  organizationId?: string | null;
  /** The study on whose behalf a training node acts. */
  studyId?: string | null;
}

export interface RecordFacts {
  resourceType: string;
  category?: string | null;
  sensitivity: Sensitivity;
}

export interface AccessRequest {
  actor: RequestActor;
  patientId: string;
  action: Action;
  purpose: Purpose;
  /** ISO-8601 instant or a Date. */
  at: string | Date;
  record?: RecordFacts;
}

export interface AccessDecision {
  decision: 'PERMIT' | 'DENY';
  /** The first grant (by id) that permits the request. */
  grantId?: string;
}

function ms(t: string | Date): number {
  return typeof t === 'string' ? Date.parse(t) : t.getTime();
}

/** ACTIVE, REVOKED, or EXPIRED once `at` has reached `validUntil`. */
export function effectiveStatus(grant: ConsentGrant, at: string | Date): GrantStatus {
  if (grant.status !== 'ACTIVE') return grant.status;
  if (grant.validUntil && ms(at) >= ms(grant.validUntil)) return 'EXPIRED';
  return 'ACTIVE';
}

export function granteeMatches(grantee: Grantee, actor: RequestActor): boolean {
  switch (grantee.type) {
    case 'CLINICIAN':
      return grantee.id === actor.id;
    case 'ORGANIZATION':
      return !!actor.organizationId && grantee.id === actor.organizationId;
    case 'STUDY':
      return !!actor.studyId && grantee.id === actor.studyId;
  }
}

/**
 * True when the grant covers who asks, for whom, what, why and when — whatever its record
 * filters. No such grant at all means CONSENT_REQUIRED.
 */
export function grantApplies(grant: ConsentGrant, request: AccessRequest): boolean {
  const at = ms(request.at);
  return (
    grant.patientId === request.patientId &&
    grant.status === 'ACTIVE' &&
    ms(grant.validFrom) <= at &&
    (!grant.validUntil || at < ms(grant.validUntil)) &&
    granteeMatches(grant.grantee, request.actor) &&
    grant.actions.includes(request.action) &&
    grant.purpose === request.purpose
  );
}

/** A record filter of a grant: the record's resource type, its category, its sensitivity. */
export type RecordFilter = 'resourceType' | 'category' | 'sensitivity';

/** The first of the grant's record filters the record fails, or null when it passes them all. */
export function failedRecordFilter(grant: ConsentGrant, record: RecordFacts): RecordFilter | null {
  if (grant.resourceTypes.length !== 0 && !grant.resourceTypes.includes(record.resourceType)) {
    return 'resourceType';
  }
  if (
    grant.categories.length !== 0 &&
    (record.category == null || !grant.categories.includes(record.category))
  ) {
    return 'category';
  }
  return record.sensitivity === 'NORMAL' || grant.includeRestricted ? null : 'sensitivity';
}

/** The grant's record filters: resource type, category, sensitivity. */
export function recordAllowed(grant: ConsentGrant, record: RecordFacts): boolean {
  return failedRecordFilter(grant, record) === null;
}

/**
 * Unicode's bidirectional controls (embeddings, overrides, isolates): text holding one reads
 * in another order than it was written ("\u202Enimda" shows as "admin").
 */
export const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/u;

/**
 * What an identifier (a token's `sub` or `org`, a grantee) may not hold, for the chaincode and
 * the API alike: control characters (Cc: C0, DEL, C1), unpaired surrogates (Cs, with the u
 * flag), U+10FFFF (which Fabric's composite keys refuse), and bidirectional controls (an
 * identifier is shown to patients in their access log: the ranges of BIDI_CONTROLS).
 */
export const UNSTORABLE_IN_IDENTIFIER = /[\p{Cc}\p{Cs}\u{10FFFF}\u202A-\u202E\u2066-\u2069]/u;

/**
 * What a grantee id may not hold besides (UNSTORABLE_IN_IDENTIFIER), for the chaincode and the
 * API alike: characters that show as nothing, or as a plain space, so that an id holding one
 * reads exactly like another's ("dr-bob\u200B" as "dr-bob") to the patient who grants it.
 * Format characters (Cf: zero-width spaces and joiners, soft hyphens, byte-order marks,
 * bidirectional marks), line and paragraph separators (Zl, Zp), spaces other than U+0020 (Zs),
 * and whitespace at either end.
 */
export const INVISIBLE_IN_GRANTEE = /[\p{Cf}\p{Zl}\p{Zp}\p{Cc}]|(?! )\p{Zs}|^\s|\s$/u;

/** permits(grant, request) of ARCHITECTURE section 5. */
export function permits(grant: ConsentGrant, request: AccessRequest): boolean {
  return grantApplies(grant, request) && (!request.record || recordAllowed(grant, request.record));
}

/** A request is permitted iff some grant permits it. */
export function decide(grants: readonly ConsentGrant[], request: AccessRequest): AccessDecision {
  const permitting = grants
    .filter((g) => permits(g, request))
    .map((g) => g.id)
    .sort();
  return permitting.length ? { decision: 'PERMIT', grantId: permitting[0] } : { decision: 'DENY' };
}

/** A span during which a patient's yes/no choice (patient-choice.ts) was off. */
export interface ChoicePeriod {
  from: string;
  until: string | null;
}

/**
 * The periods during which the choice was off. An entry from before they were kept knows only
 * its last change: off since then, or (allowed) no period it can name.
 */
export function offPeriodsOf(choice: {
  allow: boolean;
  setAt: string;
  offPeriods?: readonly ChoicePeriod[];
}): readonly ChoicePeriod[] {
  if (choice.offPeriods) return choice.offPeriods;
  return choice.allow ? [] : [{ from: choice.setAt, until: null }];
}

/**
 * The opt-out that ended an emergency declared at `declaredAt`, by the instant `at`: turning
 * emergency access off ends the emergencies running then, for good (a declaration while it is
 * off is refused). Undefined when none did.
 */
export function emergencyEndedBy(
  offPeriods: readonly ChoicePeriod[],
  declaredAt: string,
  at: number,
): ChoicePeriod | undefined {
  const declared = Date.parse(declaredAt);
  return offPeriods.find((p) => {
    const from = Date.parse(p.from);
    return from > declared && from <= at;
  });
}
