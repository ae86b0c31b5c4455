// The consent decision and the access log as the search, history and amendment operations
// use them: the same policy decision point and the same events as `records`/`record`
// (records.service), kept here so that those operations live beside it, not inside it.
import { Injectable } from '@nestjs/common';
import type { Action, RecordFacts } from '@custodia/chaincode/policy';
import { Actor, hasRole } from '../auth';
import { AccessLog, NewAccessEvent } from '../audit';
import { BadUserInputError, ConsentRequiredError } from '../common/errors';
import { Decision, EmergencyBasis, PolicyDecisionPoint } from '../consent';
import { PatientsService } from '../patients';
import { OpenRow } from './record-opener';
import type { AnchorQuestion } from './ledger-anchors';
import { AnchorLookup, integrityOf } from './record-integrity';
import { HealthRecordModel, SensitivityEnum } from './record.model';

@Injectable()
export class RecordAccess {
  constructor(
    private readonly patients: PatientsService,
    private readonly pdp: PolicyDecisionPoint,
    private readonly log: AccessLog,
  ) {}

  /** On what basis the actor may READ (or WRITE) the patient's records, for treatment. */
  async decide(actor: Actor, patientId: string, action: Action = 'READ'): Promise<Decision> {
    const own = hasRole(actor, 'PATIENT') ? await this.patients.patientIdOf(actor) : null;
    return this.pdp.decide(actor, own, patientId, action, 'TREATMENT');
  }

  /** As decide, for a read of the patient's records: CONSENT_REQUIRED (logged) on no basis. */
  async decideRead(actor: Actor, patientId: string): Promise<Decision> {
    const decision = await this.decide(actor, patientId);
    if (decision.basis.kind === 'none') {
      await this.logDenied(actor, decision, patientId, []);
      throw new ConsentRequiredError(
        "No active consent lets you read this patient's records. Ask the patient to grant access.",
      );
    }
    return decision;
  }

  /**
   * Whose records a write (createRecord, importBundle) adds to, and on what basis: the patient
   * named by `patientId`, else the caller's own profile; the patient themself, or a clinician
   * under an active WRITE grant for treatment (whose record filters each record written must
   * then pass). CONSENT_REQUIRED, logged for a real patient, on no basis; BAD_USER_INPUT at
   * `field` when a caller with no profile names no one.
   */
  async decideWrite(
    actor: Actor,
    patientId: string | null | undefined,
    field: string,
  ): Promise<{ patientId: string; decision: Decision }> {
    const own = hasRole(actor, 'PATIENT') ? await this.patients.patientIdOf(actor) : null;
    const target = patientId ?? own;
    if (!target) {
      if (hasRole(actor, 'PATIENT')) await this.patients.requirePatientId(actor);
      throw new BadUserInputError(`${field} names the patient whose records these are`, field);
    }
    const decision = await this.pdp.decide(actor, own, target, 'WRITE', 'TREATMENT');
    if (decision.basis.kind === 'none') {
      await this.logDenied(actor, decision, target, []);
      throw new ConsentRequiredError(
        "No active consent lets you add records to this patient's profile. Ask the patient for a WRITE grant.",
      );
    }
    return { patientId: target, decision };
  }

  admits(decision: Decision, row: RecordFacts): boolean {
    return this.pdp.admits(decision, factsOf(row));
  }

  /** The grants' record filters as SQL over `alias` (null when not under grants). */
  filterSql(decision: Decision, alias: string, params: unknown[]): string | null {
    return this.pdp.recordFilterSql(decision, alias, params);
  }

  /**
   * What a call read (or wrote), in the patient's access log, each record under what allowed
   * it: one event per call, or under grants one per grant that admitted some of its records
   * (each record under the first grant, by id, that permits it), and one more, break-glass,
   * for those only the clinician's running emergency admitted. Written together. `reason`
   * says why, when the call was not a plain read (a break-glass event adds the emergency's).
   */
  async logPermitted(
    actor: Actor,
    decision: Decision,
    patientId: string,
    rows: readonly (RecordFacts & { id: string })[],
    reason: string | null = null,
  ): Promise<void> {
    const basis = decision.basis;
    const event = {
      actorId: actor.id,
      patientId,
      action: decision.request.action,
      purpose: basis.kind === 'self' ? 'SELF' : 'TREATMENT',
      decision: 'PERMIT' as const,
      actorOrganizationId: actor.organizationId ?? undefined,
    };
    const underGrant = (consentId: string, recordIds: string[]) => ({
      ...event,
      recordIds,
      consentId,
      breakGlass: false,
      reason,
    });
    const underEmergency = (e: EmergencyBasis, recordIds: string[]) => ({
      ...event,
      recordIds,
      consentId: null,
      breakGlass: true,
      // As every break-glass event, it carries the reason the emergency was declared with.
      reason: reason === null ? e.reason : `${reason} (emergency: ${e.reason})`,
      emergencyId: e.emergencyId,
    });
    if (basis.kind === 'emergency') return this.log.record(underEmergency(basis, ids(rows)));
    if (basis.kind !== 'grants') {
      // The patient's own read: no grant stands behind it, nor needs to.
      return this.log.record({
        ...event,
        recordIds: ids(rows),
        consentId: null,
        breakGlass: false,
        reason,
      });
    }
    const byGrant = new Map<string, string[]>();
    const unGranted: string[] = [];
    for (const r of rows) {
      const grant = this.pdp.permittingGrant(decision, factsOf(r));
      if (grant === undefined) unGranted.push(r.id);
      else if (byGrant.has(grant)) byGrant.get(grant)!.push(r.id);
      else byGrant.set(grant, [r.id]);
    }
    const events: NewAccessEvent[] = [...byGrant].map(([g, recordIds]) => underGrant(g, recordIds));
    if (unGranted.length) {
      // Only an emergency admits a record no grant permits (see PolicyDecisionPoint.admits).
      if (!basis.emergency) throw new Error('a record no grant permits was read under grants');
      events.push(underEmergency(basis.emergency, unGranted));
    }
    // Nothing read: the call still happened, under the first grant.
    if (!events.length) events.push(underGrant(basis.grants[0].id, []));
    await this.log.recordGroup(events);
  }

  async logDenied(
    actor: Actor,
    decision: Decision,
    patientId: string,
    recordIds: string[],
  ): Promise<void> {
    // Only attempts on a real patient are theirs to see.
    if (!(await this.patients.exists(patientId))) return;
    // Behind the answer: a refusal for what exists takes as long as one for what does not.
    this.log.recordBehind({
      actorId: actor.id,
      patientId,
      recordIds,
      action: decision.request.action,
      purpose: decision.basis.kind === 'self' ? 'SELF' : 'TREATMENT',
      decision: 'DENY',
      consentId: null,
      breakGlass: false,
      reason: null,
    });
  }
}

/**
 * Whether the caller reads as the patient themself. Only then is a record that fails its check
 * shown as such: named beside a listing, INTERNAL for `record`, and a rolled-back one served
 * flagged MISMATCH. To a grantee (or an emergency) such a record is absent, exactly as one that
 * does not exist: its labels, the only thing that could admit them, are not proven (they do not
 * open the ciphertext, or are an older version's, which the ledger no longer holds), and its
 * id may be another patient's.
 */
export function readsAsOwner(decision: Decision): boolean {
  return decision.basis.kind === 'self';
}

/**
 * Whether a record that opened is served to the caller under its anchor: always to its
 * patient; to a grantee not when it was rolled back (it carries labels the ledger no longer
 * holds: a version since restricted would pass an unrestricted grant).
 */
export function servable(decision: Decision, anchor: AnchorLookup): boolean {
  return readsAsOwner(decision) || anchor.state !== 'superseded';
}

/** The opened records served to the caller, each with its anchor (see servable). */
export function served(
  decision: Decision,
  opened: readonly OpenRow[],
  anchors: readonly AnchorLookup[],
): { o: OpenRow; anchor: AnchorLookup }[] {
  return opened.flatMap((o, i) =>
    servable(decision, anchors[i]) ? [{ o, anchor: anchors[i] }] : [],
  );
}

export function factsOf(row: RecordFacts): RecordFacts {
  return { resourceType: row.resourceType, category: row.category, sensitivity: row.sensitivity };
}

/** What to ask the ledger of a record's current version as read. */
export function anchorQuestion({ row, hash }: OpenRow): AnchorQuestion {
  return { recordId: row.id, version: row.version, contentHash: hash, current: true };
}

/** A record version as returned: its hash recomputed, its integrity judged by the ledger. */
export function recordModel(
  { row, resource, hash }: OpenRow,
  anchor: AnchorLookup,
): HealthRecordModel {
  return {
    id: row.id,
    patientId: row.patientId,
    resourceType: row.resourceType,
    category: row.category,
    sensitivity: row.sensitivity as SensitivityEnum,
    resource,
    version: row.version,
    contentHash: hash,
    integrity: integrityOf(hash, anchor, row.anchorState),
    ledgerTxId: anchor.state === 'anchored' ? anchor.txId : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

function ids(rows: readonly { id: string }[]): string[] {
  return rows.map((r) => r.id);
}
