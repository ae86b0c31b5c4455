import {
  Args,
  Context,
  ID,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Actor, AnyRole, CurrentActor, Roles } from '../auth';
import { RequestLoader } from '../common/request-loader';
import { JSONScalar } from '../common/scalars';
import { PatientModel, PatientsService } from '../patients';
import { GrantConsentInput } from './consent.model';
import { PatientKeyModel } from './patient-key.model';
import { PatientKeysService } from './patient-keys.service';
import { CHOICE_NAMES, PatientChoice } from './patient-choice.model';

@Resolver(() => PatientKeyModel)
export class PatientKeysResolver {
  constructor(private readonly keys: PatientKeysService) {}

  @Roles('PATIENT')
  @Query(() => String, {
    description: 'The exact bytes (JCS of the grant terms) a patient signs for grantConsent.',
  })
  consentPayload(@CurrentActor() actor: Actor, @Args('input') input: GrantConsentInput) {
    return this.keys.consentPayload(actor, input);
  }

  @Roles('PATIENT')
  @Query(() => String, {
    description:
      'The bytes a patient may sign to revoke a grant (revokeConsent(id, signature)); revoking needs no signature.',
  })
  revocationPayload(@CurrentActor() actor: Actor, @Args('id', { type: () => ID }) id: string) {
    return this.keys.revocationPayload(actor, id);
  }

  @Roles('PATIENT')
  @Query(() => String, {
    description:
      "The bytes a patient signs to turn signed-only consent off (or on), naming the setting's version.",
  })
  settingPayload(
    @CurrentActor() actor: Actor,
    @Args('requireSignedConsent') requireSignedConsent: boolean,
  ) {
    return this.keys.settingPayload(actor, requireSignedConsent);
  }

  @Roles('PATIENT')
  @Query(() => String, {
    description:
      'The bytes a patient who accepts only signed consent signs to turn emergency access or AI decisions back on (setEmergencyAccess / setAiDecisions with allow true and this signature), naming how many times they turned it off.',
  })
  choicePayload(
    @CurrentActor() actor: Actor,
    @Args('choice', { type: () => PatientChoice }) choice: PatientChoice,
    @Args('allow') allow: boolean,
  ) {
    return this.keys.choicePayload(actor, CHOICE_NAMES[choice], allow);
  }

  @Roles('PATIENT')
  @Query(() => String, {
    description: 'The bytes a patient signs (with an existing key) to add or remove a key.',
  })
  keyPayload(
    @CurrentActor() actor: Actor,
    @Args('publicKeyJwk', { type: () => JSONScalar }) publicKeyJwk: unknown,
    @Args('remove', { type: () => Boolean, nullable: true }) remove?: boolean | null,
  ) {
    return this.keys.keyPayload(actor, publicKeyJwk, remove ?? false);
  }

  @Roles('PATIENT')
  @Query(() => [PatientKeyModel], { description: "A patient's own registered device keys." })
  patientKeys(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
  ) {
    return this.keys.keys(actor, patientId);
  }

  @Roles('PATIENT')
  @Mutation(() => PatientKeyModel, {
    description:
      "The first key is registered by the patient's session, through the organisation they registered with; later keys need a signature by an existing key.",
  })
  registerPatientKey(
    @CurrentActor() actor: Actor,
    @Args('publicKeyJwk', { type: () => JSONScalar }) publicKeyJwk: unknown,
    @Args('signature', { type: () => String, nullable: true }) signature?: string | null,
  ) {
    return this.keys.register(actor, publicKeyJwk, signature);
  }

  @Roles('PATIENT')
  @Mutation(() => [PatientKeyModel], {
    description:
      'Removes a key, signed by a registered key over keyPayload(publicKeyJwk, true); the last key stays. Answers the keys that remain.',
  })
  removePatientKey(
    @CurrentActor() actor: Actor,
    @Args('publicKeyJwk', { type: () => JSONScalar }) publicKeyJwk: unknown,
    @Args('signature') signature: string,
  ) {
    return this.keys.remove(actor, publicKeyJwk, signature);
  }
}

@Resolver(() => PatientModel)
export class SignedConsentResolver {
  /** A list of patients (myPatients) reads their settings in one query, not one each. */
  private readonly signedOnlyOf = new RequestLoader<string, boolean>((ids) =>
    this.keys.signedOnlyAll(ids),
  );

  constructor(
    private readonly keys: PatientKeysService,
    private readonly patients: PatientsService,
  ) {}

  @Roles('PATIENT')
  @Mutation(() => PatientModel, {
    description:
      'Accept only grants you signed (no signature needed), or stop (signed over settingPayload(false)).',
  })
  async requireSignedConsent(
    @CurrentActor() actor: Actor,
    @Args('require') require: boolean,
    @Args('signature', { type: () => String, nullable: true }) signature?: string | null,
  ) {
    const patientId = await this.keys.requireSigned(actor, require, signature);
    return this.patients.get(actor, patientId);
  }

  @AnyRole()
  @ResolveField('requireSignedConsent', () => Boolean, {
    description:
      'Once true, the chaincode refuses any grant for this patient that the patient did not sign.',
  })
  signedOnly(@Parent() patient: PatientModel, @Context() request: object) {
    return this.signedOnlyOf.load(request, patient.id);
  }
}
