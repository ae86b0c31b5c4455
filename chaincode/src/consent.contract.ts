// Consent grants: the ledger is their source of truth. Every API organisation writes and
// reads them through this contract, so a grant made anywhere is enforced everywhere.
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import {
  ACTIONS,
  Action,
  ConsentGrant,
  decide,
  effectiveStatus,
  EMERGENCY_MINUTES,
  GRANTEE_TYPES,
  GranteeType,
  PURPOSES,
  Purpose,
  SENSITIVITIES,
} from './policy';
import {
  caller,
  emit,
  getJson,
  indexKeys,
  key,
  KEYS,
  putIndex,
  putJson,
  txTime,
  valuesPage,
} from './state';
import { grantSigner, revocationSigner } from './keys.contract';
import { choiceAnswer, choiceOf, PatientChoice, recordChoice } from './patient-choice';
import * as v from './validation';
import { ChaincodeError } from './validation';

/** A grant as stored on the ledger: the rule's fields plus who wrote it, and when. */
export interface GrantRecord extends ConsentGrant {
  createdAt: string;
  txId: string;
  writtenBy: string;
  revokedTxId?: string | null;
  /** Signed by one of the patient's registered keys (absent on grants from before keys). */
  patientSigned?: boolean;
  /**
   * The id (thumbprint) of the key that signed; the chaincode verified the JWS when it wrote
   * the grant. The JWS is not kept in the state that every read loads (on Fabric it stays in
   * the block's transaction arguments).
   */
  signedBy?: string | null;
  /** The key that signed the revocation, when the patient signed it (see RevokeSignedConsent). */
  revocationSignedBy?: string | null;
}

/**
 * A clinician's declared emergency (break-glass) as the ledger holds it: who, for which
 * patient, and the window, taken from the transaction's time. The reason is free text and
 * stays off the ledger (it is PHI-prone); the API keeps it encrypted under the patient's key.
 */
export interface EmergencyRecord {
  id: string;
  patientId: string;
  clinicianId: string;
  declaredAt: string;
  expiresAt: string;
  txId: string;
  writtenBy: string;
}

/** Whether clinicians may declare an emergency on the patient (absent: they may). */
export type EmergencyAccessSetting = PatientChoice;

export const CONSENT_EVENTS = {
  granted: 'ConsentGranted',
  revoked: 'ConsentRevoked',
  emergency: 'EmergencyDeclared',
  emergencySetting: 'EmergencyAccessSet',
} as const;

const GRANT_FIELDS = [
  'id',
  'patientId',
  'grantee',
  'purpose',
  'actions',
  'resourceTypes',
  'categories',
  'includeRestricted',
  'validFrom',
  'validUntil',
] as const;

/** Validates a grant's terms, including which purpose/action/grantee combinations make sense. */
export function parseGrant(json: string, now: string): ConsentGrant {
  const g = v.parseJson(json, 'grant');
  v.only(g, 'grant', GRANT_FIELDS);
  const granteeObj = g.grantee;
  if (typeof granteeObj !== 'object' || granteeObj === null || Array.isArray(granteeObj)) {
    throw new ChaincodeError('INVALID_ARGUMENT', 'grant.grantee must be an object {type, id}');
  }
  const grantee = granteeObj as Record<string, unknown>;
  v.only(grantee, 'grant.grantee', ['type', 'id']);
  const granteeType: GranteeType = v.oneOf(grantee.type, GRANTEE_TYPES, 'grant.grantee.type');
  const purpose: Purpose = v.oneOf(g.purpose, PURPOSES, 'grant.purpose');
  const actions: Action[] = v.list(g.actions, 'grant.actions', (a, f) => v.oneOf(a, ACTIONS, f), {
    min: 1,
    max: ACTIONS.length,
  });
  if (actions.includes('TRAIN') && (purpose !== 'RESEARCH' || granteeType !== 'STUDY')) {
    throw new ChaincodeError(
      'INVALID_ARGUMENT',
      'grant.actions: TRAIN is granted only for purpose RESEARCH to a STUDY grantee',
    );
  }
  if (actions.some((a) => a !== 'TRAIN') && purpose !== 'TREATMENT') {
    throw new ChaincodeError(
      'INVALID_ARGUMENT',
      'grant.actions: READ and WRITE are granted only for purpose TREATMENT',
    );
  }
  const validFrom =
    g.validFrom === undefined || g.validFrom === null
      ? now
      : v.instant(g.validFrom, 'grant.validFrom');
  const validUntil =
    g.validUntil === undefined || g.validUntil === null
      ? null
      : v.instant(g.validUntil, 'grant.validUntil');
  if (validUntil && Date.parse(validUntil) <= Date.parse(validFrom)) {
    throw new ChaincodeError('INVALID_ARGUMENT', 'grant.validUntil must be after grant.validFrom');
  }
  return {
    id: v.id(g.id, 'grant.id'),
    patientId: v.id(g.patientId, 'grant.patientId'),
    grantee: { type: granteeType, id: v.grantee(grantee.id, 'grant.grantee.id') },
    purpose,
    actions,
    resourceTypes: v.list(g.resourceTypes, 'grant.resourceTypes', v.code),
    categories: v.list(g.categories, 'grant.categories', v.code),
    includeRestricted:
      g.includeRestricted === undefined
        ? false
        : v.bool(g.includeRestricted, 'grant.includeRestricted'),
    validFrom,
    validUntil,
    status: 'ACTIVE',
    revokedAt: null,
  };
}

@Info({ title: 'consent', description: 'Patient consent grants and access checks' })
export class ConsentContract extends Contract {
  constructor() {
    super('consent');
  }

  @Transaction()
  @Returns('string')
  async GrantConsent(ctx: Context, grantJson: string): Promise<string> {
    const now = txTime(ctx);
    // The patient's signature travels with the terms; it is checked after them.
    const { signature = null, ...terms } = v.parseJson(grantJson, 'grant');
    const grant = parseGrant(JSON.stringify(terms), now);
    const k = key(ctx, KEYS.grant, [grant.id]);
    if (await getJson(ctx, k)) {
      throw new ChaincodeError('CONFLICT', `grant ${grant.id} already exists`);
    }
    // What the patient signed: an absent validFrom means "from when it is written".
    const openStart = terms.validFrom === undefined || terms.validFrom === null;
    const signedBy = await grantSigner(
      ctx,
      {
        ...grant,
        validFrom: openStart ? null : grant.validFrom,
        validUntil: grant.validUntil ?? null,
      },
      signature,
    );
    const record: GrantRecord = {
      ...grant,
      createdAt: now,
      txId: ctx.stub.getTxID(),
      writtenBy: caller(ctx),
      revokedTxId: null,
      patientSigned: signedBy !== null,
      signedBy,
    };
    await putJson(ctx, k, record);
    await putIndex(ctx, KEYS.grantByPatient, [grant.patientId, grant.id]);
    await putIndex(ctx, KEYS.grantByGrantee, [grant.grantee.type, grant.grantee.id, grant.id]);
    emit(ctx, CONSENT_EVENTS.granted, record);
    // As read now: a grant whose window has already closed reads as EXPIRED.
    return JSON.stringify(withStatus(record, now));
  }

  @Transaction()
  @Returns('string')
  async RevokeConsent(ctx: Context, grantId: string): Promise<string> {
    return this.revoke(ctx, grantId, null);
  }

  /**
   * Revokes a grant with the patient's signature over revocationPayload: the same revocation,
   * recorded as the patient's own. A bad signature refuses it (revoke unsigned instead).
   */
  @Transaction()
  @Returns('string')
  async RevokeSignedConsent(ctx: Context, grantId: string, signature: string): Promise<string> {
    return this.revoke(ctx, grantId, signature);
  }

  private async revoke(ctx: Context, grantId: string, signature: string | null): Promise<string> {
    const id = v.id(grantId, 'grantId');
    const k = key(ctx, KEYS.grant, [id]);
    const grant = await getJson<GrantRecord>(ctx, k);
    if (!grant) throw new ChaincodeError('NOT_FOUND', `grant ${id} does not exist`);
    if (grant.status === 'REVOKED') {
      throw new ChaincodeError('CONFLICT', `grant ${id} was already revoked at ${grant.revokedAt}`);
    }
    const signedBy =
      signature === null ? null : await revocationSigner(ctx, grant.patientId, id, signature);
    const revoked: GrantRecord = {
      ...grant,
      status: 'REVOKED',
      revokedAt: txTime(ctx),
      revokedTxId: ctx.stub.getTxID(),
      ...(signedBy ? { revocationSignedBy: signedBy } : {}),
    };
    await putJson(ctx, k, revoked);
    emit(ctx, CONSENT_EVENTS.revoked, revoked);
    return JSON.stringify(revoked);
  }

  @Transaction(false)
  @Returns('string')
  async GetConsent(ctx: Context, grantId: string): Promise<string> {
    const id = v.id(grantId, 'grantId');
    const grant = await getJson<GrantRecord>(ctx, key(ctx, KEYS.grant, [id]));
    if (!grant) throw new ChaincodeError('NOT_FOUND', `grant ${id} does not exist`);
    return JSON.stringify(withStatus(grant, txTime(ctx)));
  }

  @Transaction(false)
  @Returns('string')
  async ListConsentsByPatient(ctx: Context, patientId: string): Promise<string> {
    const pid = v.id(patientId, 'patientId');
    return JSON.stringify(await this.grantsOfPatient(ctx, pid, txTime(ctx)));
  }

  @Transaction(false)
  @Returns('string')
  async ListConsentsByGrantee(
    ctx: Context,
    granteeType: string,
    granteeId: string,
  ): Promise<string> {
    const type = v.oneOf(granteeType, GRANTEE_TYPES, 'granteeType');
    const gid = v.principal(granteeId, 'granteeId');
    const now = txTime(ctx);
    const ids = (await indexKeys(ctx, KEYS.grantByGrantee, [type, gid])).map((a) => a[2]);
    return JSON.stringify(await this.load(ctx, ids, now));
  }

  /**
   * Every grant as stored (status ACTIVE or REVOKED, whatever its window), a page at a time,
   * in key order: what an API compares its consent projection with.
   */
  @Transaction(false)
  @Returns('string')
  async ListConsents(ctx: Context, pageSize: string, bookmark: string): Promise<string> {
    const page = await valuesPage<GrantRecord>(ctx, KEYS.grant, pageSize, bookmark);
    return JSON.stringify({ grants: page.values, bookmark: page.bookmark });
  }

  /**
   * Records a clinician's emergency access to a patient: READ for EMERGENCY_MINUTES from the
   * transaction's time. Each declaration is its own entry, so every read under it can cite it.
   */
  @Transaction()
  @Returns('string')
  async DeclareEmergency(ctx: Context, emergencyJson: string): Promise<string> {
    const e = v.parseJson(emergencyJson, 'emergency');
    v.only(e, 'emergency', ['id', 'patientId', 'clinicianId']);
    const id = v.id(e.id, 'emergency.id');
    const k = key(ctx, KEYS.emergency, [id]);
    if (await getJson(ctx, k)) {
      throw new ChaincodeError('CONFLICT', `emergency ${id} already exists`);
    }
    const patientId = v.id(e.patientId, 'emergency.patientId');
    // The patient's opt-out holds on every organisation's peer, whatever its database says.
    const setting = await choiceOf(ctx, KEYS.emergencySetting, patientId);
    if (setting && !setting.allow) {
      throw new ChaincodeError('FORBIDDEN', `patient ${patientId} has turned emergency access off`);
    }
    const declaredAt = txTime(ctx);
    const record: EmergencyRecord = {
      id,
      patientId,
      clinicianId: v.principal(e.clinicianId, 'emergency.clinicianId'),
      declaredAt,
      expiresAt: new Date(Date.parse(declaredAt) + EMERGENCY_MINUTES * 60_000).toISOString(),
      txId: ctx.stub.getTxID(),
      writtenBy: caller(ctx),
    };
    await putJson(ctx, k, record);
    emit(ctx, CONSENT_EVENTS.emergency, record);
    return JSON.stringify(record);
  }

  /**
   * Records whether the patient allows emergency access (break-glass) to their records: off,
   * DeclareEmergency refuses every declaration about them, through any organisation.
   */
  @Transaction()
  @Returns('string')
  async SetEmergencyAccess(ctx: Context, settingJson: string): Promise<string> {
    return recordChoice(
      ctx,
      settingJson,
      KEYS.emergencySetting,
      CONSENT_EVENTS.emergencySetting,
      'emergency-access',
    );
  }

  /** The patient's emergency-access setting (allowed, with no txId, when never set). */
  @Transaction(false)
  @Returns('string')
  async GetEmergencyAccess(ctx: Context, patientId: string): Promise<string> {
    return choiceAnswer(ctx, KEYS.emergencySetting, patientId);
  }

  @Transaction(false)
  @Returns('string')
  async GetEmergency(ctx: Context, emergencyId: string): Promise<string> {
    const id = v.id(emergencyId, 'emergencyId');
    const record = await getJson<EmergencyRecord>(ctx, key(ctx, KEYS.emergency, [id]));
    if (!record) throw new ChaincodeError('NOT_FOUND', `emergency ${id} does not exist`);
    return JSON.stringify(record);
  }

  /** Decides a request with the one consent rule, at the transaction's time. */
  @Transaction(false)
  @Returns('string')
  async CheckAccess(ctx: Context, requestJson: string): Promise<string> {
    const r = v.parseJson(requestJson, 'request');
    v.only(r, 'request', ['actor', 'patientId', 'action', 'purpose', 'record']);
    const a = v.object(r.actor, 'request.actor');
    v.only(a, 'request.actor', ['id', 'organizationId', 'studyId']);
    const optional = <T>(x: unknown, check: (x: unknown) => T) =>
      x === undefined || x === null ? null : check(x);
    let record;
    if (r.record !== undefined && r.record !== null) {
      const rec = v.object(r.record, 'request.record');
      v.only(rec, 'request.record', ['resourceType', 'category', 'sensitivity']);
      record = {
        resourceType: v.code(rec.resourceType, 'request.record.resourceType'),
        category:
          rec.category === undefined || rec.category === null
            ? null
            : v.code(rec.category, 'request.record.category'),
        sensitivity: v.oneOf(rec.sensitivity, SENSITIVITIES, 'request.record.sensitivity'),
      };
    }
    const at = txTime(ctx);
    const request = {
      actor: {
        id: v.principal(a.id, 'request.actor.id'),
        organizationId: optional(a.organizationId, (x) =>
          v.principal(x, 'request.actor.organizationId'),
        ),
        studyId: optional(a.studyId, (x) => v.id(x, 'request.actor.studyId')),
      },
      patientId: v.id(r.patientId, 'request.patientId'),
      action: v.oneOf(r.action, ACTIONS, 'request.action'),
      purpose: v.oneOf(r.purpose, PURPOSES, 'request.purpose'),
      at,
      record,
    };
    const grants = await this.grantsOfPatient(ctx, request.patientId, at);
    return JSON.stringify({ ...decide(grants, request), at });
  }

  private async grantsOfPatient(
    ctx: Context,
    patientId: string,
    now: string,
  ): Promise<GrantRecord[]> {
    const ids = (await indexKeys(ctx, KEYS.grantByPatient, [patientId])).map((a) => a[1]);
    return this.load(ctx, ids, now);
  }

  private async load(ctx: Context, ids: string[], now: string): Promise<GrantRecord[]> {
    const out: GrantRecord[] = [];
    for (const id of ids) {
      const g = await getJson<GrantRecord>(ctx, key(ctx, KEYS.grant, [id]));
      if (g) out.push(withStatus(g, now));
    }
    return out;
  }
}

/** The grant as read at `now`: an ACTIVE grant past its validUntil reads as EXPIRED. */
function withStatus(grant: GrantRecord, now: string): GrantRecord {
  const status = effectiveStatus(grant, now);
  return status === grant.status ? grant : { ...grant, status };
}
