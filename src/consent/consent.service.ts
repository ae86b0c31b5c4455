// Grants and revocations: validated here (field by field, for a clear answer), written to the
// ledger (the source of truth, which validates again), and applied to the projection as soon
// as the transaction commits, so the very next request sees them.
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { GrantRecord } from '@custodia/chaincode';
import { INVISIBLE_IN_GRANTEE } from '@custodia/chaincode/policy';
import { consentPayload } from '@custodia/chaincode/signed-consent';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Actor, hasRole } from '../auth';
import { identifierProblem, MAX_IDENTIFIER_LENGTH } from '../auth/identifiers';
import { BadUserInputError, ConflictError, ForbiddenError, NotFoundError } from '../common/errors';
import { checkDetachedJws } from '../common/detached-jws';
import { Ledger, LEDGER } from '../ledger';
import { PatientsService } from '../patients';
import { INSTANT_RULE } from '../common/instants';
import { holdsPatientData } from '../records/fhir';
import { ConsentGrantEntity } from './consent-grant.entity';
import { ConsentProjection, toGrantModel, toGrantModelFromLedger } from './consent-projection';
import { ConsentGrantModel, GrantConsentInput, ListedGrantStatus } from './consent.model';
import { GrantAuthenticity } from './grant-authenticity';
import { SignedConsentSettings } from './signed-consent-settings';

/** A client-chosen grant id, as the API takes one. */
export const GRANT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const CODE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
const MAX_FILTERS = 64;

@Injectable()
export class ConsentService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly projection: ConsentProjection,
    private readonly patients: PatientsService,
    private readonly authenticity: GrantAuthenticity,
    private readonly settings: SignedConsentSettings,
  ) {}

  async grant(actor: Actor, input: GrantConsentInput): Promise<ConsentGrantModel> {
    const patientId = await this.patients.requirePatientId(actor);
    const terms = validateGrant(input);
    const signature = validateSignature(input);
    if (terms.grantee.type === 'STUDY') await this.requireRegisteredStudy(terms.grantee.id);
    const id = input.id ?? randomUUID();
    const result = await this.projection.write(id, async () => {
      const { result } = await this.ledger
        .submit<GrantRecord>('consent', 'GrantConsent', [
          JSON.stringify({ id, patientId, ...terms, signature }),
        ])
        .catch(async (e: unknown) => {
          // A retry of a grant that was written (its answer lost to a crash or a timeout)
          // still conflicts, as any reuse of an id does (a replay writes nothing), but says
          // that this very grant stands, so the patient need not sign it again.
          if (e instanceof ConflictError && input.id) {
            const written = await this.writtenAlready(id, patientId, terms, signature);
            if (written) {
              throw new ConflictError(
                `Grant ${id} already exists with these terms and is ${written.status}: an earlier request wrote it (it is in consents).`,
              );
            }
          }
          // The chaincode forbids an unsigned grant of a signed-only patient, whoever submits
          // it; to the patient asking, it is a signature missing from their input.
          if (e instanceof ForbiddenError && signature === null) {
            throw new BadUserInputError(
              'You accept only grants you signed (requireSignedConsent is on): sign the bytes consentPayload returns for these terms and pass the JWS as signature.',
              'input.signature',
            );
          }
          throw e;
        });
      return result;
    });
    // Erased meanwhile (erasure revokes every grant it finds on the ledger, then looks again
    // once the profile is marked erased): a grant that landed after that last look is revoked
    // here, as this request, which checked the profile before, is the only one to know of it.
    if (await this.patients.isErased(patientId)) {
      await this.revokeStanding(id);
      throw new NotFoundError('This patient profile was erased; no grant was made.');
    }
    // The row now holds exactly what the ledger answered: no need to read it back.
    return toGrantModelFromLedger(result);
  }

  /**
   * A research consent names a study that exists: one registered on the ledger (where every
   * organisation's studies are, whichever database holds the catalogue row), so that a
   * patient never consents to an id that no study has, or may later be given.
   */
  private async requireRegisteredStudy(studyId: string): Promise<void> {
    const registered = await this.ledger
      .evaluate('training', 'GetStudy', [studyId])
      .then(() => true)
      .catch((e: unknown) => {
        // An id the chaincode refuses to read (not an id at all) names no study either.
        if (e instanceof NotFoundError || e instanceof BadUserInputError) return false;
        throw e;
      });
    if (!registered) {
      throw new BadUserInputError(
        'granteeId names no study: a STUDY grant takes the id of a study in the catalogue (studies).',
        'input.granteeId',
      );
    }
  }

  async revoke(actor: Actor, id: string, signature?: string | null): Promise<ConsentGrantModel> {
    const patientId = await this.patients.requirePatientId(actor);
    const notFound = new NotFoundError('No consent grant with that id.');
    if (!GRANT_ID.test(id)) throw notFound;
    checkDetachedJws(signature, 'signature', 'revocationPayload(id)');
    // The ledger says whose grant it is and whether it stands: a projection row revoked or
    // deleted in the database must never stop a patient revoking what the ledger still holds.
    const grant = await this.ledger
      .evaluate<GrantRecord>('consent', 'GetConsent', [id])
      .catch((e: unknown) => {
        if (e instanceof NotFoundError) return null;
        throw e;
      });
    // Another patient's grant answers exactly as one that does not exist.
    if (!grant || grant.patientId !== patientId) throw notFound;
    if (grant.status === 'REVOKED') throw new ConflictError('This grant is already revoked.');
    return toGrantModelFromLedger(await this.revokeOnLedger(id, signature));
  }

  /**
   * The ledger's grant `id` when it is this very grant, not revoked:
   * the patient's, with the same terms (an open start matches whatever start it was given),
   * and signed exactly when this one is. Null otherwise (another grant holds the id).
   */
  private async writtenAlready(
    id: string,
    patientId: string,
    terms: ReturnType<typeof validateGrant>,
    signature: string | null,
  ): Promise<GrantRecord | null> {
    const g = await this.ledger
      .evaluate<GrantRecord>('consent', 'GetConsent', [id])
      .catch(() => null);
    if (!g || g.status === 'REVOKED' || (g.patientSigned === true) !== (signature !== null)) {
      return null;
    }
    // The very bytes a patient signs compare the terms (instants are ISO on both sides); an
    // open start matches whatever start the ledger gave it.
    const asked = consentPayload({ id, patientId, ...terms });
    const held = consentPayload({
      ...g,
      validFrom: terms.validFrom && g.validFrom,
      validUntil: g.validUntil ?? null,
    });
    return asked === held ? g : null;
  }

  /**
   * Revokes on the ledger a grant that should not stand, unless something else (erasure, the
   * grant's own request) revoked it first, which is as wanted.
   */
  async revokeStanding(id: string): Promise<void> {
    await this.revokeOnLedger(id).catch((e: unknown) => {
      if (!(e instanceof ConflictError)) throw e;
    });
  }

  /**
   * Revokes on the ledger (signed by the patient, when a signature is given) and applies the
   * revocation before returning (read-your-writes).
   */
  async revokeOnLedger(id: string, signature?: string | null): Promise<GrantRecord> {
    return this.projection.write(id, async () => {
      const { result } = signature
        ? await this.ledger.submit<GrantRecord>('consent', 'RevokeSignedConsent', [id, signature])
        : await this.ledger.submit<GrantRecord>('consent', 'RevokeConsent', [id]);
      return result;
    });
  }

  /**
   * A patient lists their own grants; a clinician lists those made to them or to their
   * organisation (optionally for one patient).
   */
  async list(
    actor: Actor,
    patientId: string | null | undefined,
    status: ListedGrantStatus | null | undefined,
  ): Promise<ConsentGrantModel[]> {
    const q = this.db.getRepository(ConsentGrantEntity).createQueryBuilder('g');
    // Someone who is a patient here and a clinician too lists their own grants as a patient,
    // and another patient's grants to them as the clinician they are.
    const own = hasRole(actor, 'PATIENT') ? await this.patients.patientIdOf(actor) : null;
    if (own && (!patientId || patientId === own)) {
      q.where('g.patient_id = :own', { own });
    } else if (hasRole(actor, 'PATIENT') && !hasRole(actor, 'CLINICIAN')) {
      await this.patients.requirePatientId(actor);
      throw new ForbiddenError('A patient lists only their own consents.');
    } else if (hasRole(actor, 'CLINICIAN')) {
      q.where(
        `((g.grantee_type = 'CLINICIAN' AND g.grantee_id = :actorId)
          OR (g.grantee_type = 'ORGANIZATION' AND g.grantee_id = :orgId))`,
        { actorId: actor.id, orgId: actor.organizationId ?? '' },
      );
      if (patientId) q.andWhere('g.patient_id = :patientId', { patientId });
    } else {
      throw new ForbiddenError(
        'Consents are listed for patients and for the clinicians they name.',
      );
    }
    const now = new Date();
    const rows = await q.orderBy('g.created_at', 'DESC').addOrderBy('g.id').getMany();
    // Only what the ledger wrote is shown (a forged row would mislead the patient too); a
    // revocation the ledger holds shows even if the row was rolled back.
    const grants: ConsentGrantModel[] = rows
      .filter((r) => this.authenticity.authentic(r))
      .map((r) => {
        const model = toGrantModel(r, now);
        return this.authenticity.revokedOnLedger(r.id)
          ? { ...model, status: 'REVOKED' as const }
          : model;
      });
    // The decision point treats an unsigned grant of a signed-only patient as absent: the list
    // says so, rather than showing it ACTIVE.
    const unsigned = grants.filter((g) => g.status === 'ACTIVE' && !g.patientSigned);
    const signedOnly = await this.settings.signedOnly([
      ...new Set(unsigned.map((g) => g.patientId)),
    ]);
    return grants
      .map((g) =>
        g.status === 'ACTIVE' && !g.patientSigned && signedOnly.has(g.patientId)
          ? { ...g, status: 'SUSPENDED' as const }
          : g,
      )
      .filter((g) => !status || g.status === status);
  }
}

/**
 * The patient's signature, if any, in the shape the chaincode verifies; a signed grant needs a
 * client-chosen id (it is part of what was signed). The chaincode checks the signature itself.
 */
export function validateSignature(input: GrantConsentInput): string | null {
  const bad = (field: string, message: string) => new BadUserInputError(message, `input.${field}`);
  if (input.id !== undefined && input.id !== null && !GRANT_ID.test(input.id)) {
    throw bad('id', 'id must be an id of 1–128 letters, digits, . _ : or -');
  }
  if (input.signature === undefined || input.signature === null) return null;
  if (!input.id) throw bad('id', 'a signed grant needs the id that was signed (input.id)');
  return checkDetachedJws(input.signature, 'input.signature', 'consentPayload(input)');
}

/** The terms of a grant, checked field by field; the ledger checks the same again. */
export function validateGrant(input: GrantConsentInput) {
  const bad = (field: string, message: string) => new BadUserInputError(message, `input.${field}`);
  // Whom a token names (its sub, or its org): the token rule, as the chaincode's.
  if (!input.granteeId || identifierProblem(input.granteeId)) {
    throw bad(
      'granteeId',
      `granteeId must name the grantee as their tokens do: 1–${MAX_IDENTIFIER_LENGTH} characters without control characters or bidirectional controls`,
    );
  }
  // The patient sees the grantee's id as they grant it: nothing in it may be invisible, or it
  // could read exactly as someone else's (the chaincode refuses the same).
  if (INVISIBLE_IN_GRANTEE.test(input.granteeId)) {
    throw bad(
      'granteeId',
      'granteeId must not hold invisible characters (format characters such as zero-width spaces, line separators, spaces other than U+0020, or whitespace at either end): they would make it read as another id',
    );
  }
  const actions = input.actions;
  if (actions.length === 0)
    throw bad('actions', 'actions must name at least one of READ, WRITE, TRAIN');
  if (new Set(actions).size !== actions.length) throw bad('actions', 'actions must not repeat');
  if (
    actions.includes('TRAIN') &&
    (input.purpose !== 'RESEARCH' || input.granteeType !== 'STUDY')
  ) {
    throw bad('actions', 'TRAIN is granted only for purpose RESEARCH to a STUDY');
  }
  if (actions.some((a) => a !== 'TRAIN') && input.purpose !== 'TREATMENT') {
    throw bad('actions', 'READ and WRITE are granted only for purpose TREATMENT');
  }
  if (input.purpose === 'RESEARCH' && input.granteeType !== 'STUDY') {
    throw bad('granteeType', 'research consent is granted to a STUDY');
  }
  if (input.granteeType === 'STUDY' && actions.some((a) => a !== 'TRAIN')) {
    throw bad('actions', 'a STUDY is granted TRAIN only (it reads nothing)');
  }
  const codes = (field: 'resourceTypes' | 'categories') => {
    const list = input[field] ?? [];
    if (list.length > MAX_FILTERS)
      throw bad(field, `${field} may hold at most ${MAX_FILTERS} codes`);
    if (new Set(list).size !== list.length) throw bad(field, `${field} must not repeat`);
    for (const c of list) if (!CODE.test(c)) throw bad(field, `${field} holds an invalid code`);
    // A resource type that no record can have would match nothing, silently.
    if (field === 'resourceTypes') {
      const unknown = list.find((t) => !holdsPatientData(t));
      if (unknown !== undefined) {
        throw bad(
          field,
          'resourceTypes must name FHIR R4 resource types that hold patient data (such as Observation, Condition; case matters)',
        );
      }
    }
    return list;
  };
  const validFrom = input.validFrom ?? null;
  const validUntil = input.validUntil ?? null;
  for (const [field, at] of [
    ['validFrom', validFrom],
    ['validUntil', validUntil],
  ] as const) {
    if (at && Number.isNaN(at.getTime())) {
      throw bad(field, `${field} must be ${INSTANT_RULE}`);
    }
  }
  if (validUntil && validUntil.getTime() <= (validFrom ?? new Date()).getTime()) {
    throw bad(
      'validUntil',
      'validUntil must be after validFrom (or, without validFrom, after now)',
    );
  }
  return {
    grantee: { type: input.granteeType, id: input.granteeId },
    purpose: input.purpose,
    actions,
    resourceTypes: codes('resourceTypes'),
    categories: codes('categories'),
    includeRestricted: input.includeRestricted ?? false,
    validFrom: validFrom?.toISOString() ?? null,
    validUntil: validUntil?.toISOString() ?? null,
  };
}
