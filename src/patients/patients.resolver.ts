import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, AnyRole, CurrentActor, Roles } from '../auth';
import { ActorModel, PatientModel } from './patient.model';
import { PatientsService } from './patients.service';

@Resolver(() => PatientModel)
export class PatientsResolver {
  constructor(private readonly patients: PatientsService) {}

  @AnyRole()
  @Query(() => ActorModel, { description: 'The caller, as their token and profile say.' })
  async me(@CurrentActor() actor: Actor): Promise<ActorModel> {
    return {
      id: actor.id,
      roles: actor.roles,
      organizationId: actor.organizationId ?? null,
      patientId: await this.patients.patientIdOf(actor),
    };
  }

  @Roles('PATIENT')
  @Mutation(() => PatientModel, {
    description:
      "The calling PATIENT user's own profile, linked to the token's subject; idempotent.",
  })
  registerPatient(
    @CurrentActor() actor: Actor,
    @Args('displayName', { type: () => String, nullable: true }) displayName?: string | null,
    @Args('organizationId', { type: () => ID, nullable: true }) organizationId?: string | null,
  ) {
    return this.patients.register(actor, displayName, organizationId);
  }

  @Roles('PATIENT')
  @Mutation(() => PatientModel, {
    description:
      'Allow or refuse emergency (break-glass) access to your records. Once you accept only signed consent, allowing it again needs your signature over choicePayload(EMERGENCY_ACCESS, true).',
  })
  setEmergencyAccess(
    @CurrentActor() actor: Actor,
    @Args('allow') allow: boolean,
    @Args('signature', { type: () => String, nullable: true }) signature?: string | null,
  ) {
    return this.patients.setEmergencyAccess(actor, allow, signature ?? null);
  }
}
