import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, Roles } from '../auth';
import {
  ConsentGrantModel,
  ConsentStatusEnum,
  EmergencyAccessModel,
  GrantConsentInput,
  ListedGrantStatus,
} from './consent.model';
import { ConsentService } from './consent.service';
import { EmergencyService } from './emergency.service';

@Resolver(() => ConsentGrantModel)
export class ConsentResolver {
  constructor(
    private readonly service: ConsentService,
    private readonly emergencies: EmergencyService,
  ) {}

  @Roles('PATIENT')
  @Mutation(() => ConsentGrantModel, {
    description: 'Grant access to your records; written to the ledger before it takes effect.',
  })
  grantConsent(@CurrentActor() actor: Actor, @Args('input') input: GrantConsentInput) {
    return this.service.grant(actor, input);
  }

  @Roles('PATIENT')
  @Mutation(() => ConsentGrantModel, {
    description: 'Revoke one of your grants; effective when the ledger commits it.',
  })
  revokeConsent(
    @CurrentActor() actor: Actor,
    @Args('id', { type: () => ID }) id: string,
    @Args('signature', {
      type: () => String,
      nullable: true,
      description:
        'Optional: a compact JWS (ES256, detached) over revocationPayload(id); the ledger records the revocation as signed.',
    })
    signature?: string | null,
  ) {
    return this.service.revoke(actor, id, signature);
  }

  @Roles('PATIENT', 'CLINICIAN')
  @Query(() => [ConsentGrantModel], {
    description:
      "A patient's own grants, or those made to the calling clinician or their organisation.",
  })
  consents(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID, nullable: true }) patientId?: string | null,
    @Args('status', { type: () => ConsentStatusEnum, nullable: true })
    status?: ListedGrantStatus | null,
  ) {
    return this.service.list(actor, patientId, status);
  }

  @Roles('CLINICIAN')
  @Mutation(() => EmergencyAccessModel, {
    description:
      'Break-glass: READ access for 60 minutes, unless the patient opted out; always shown to the patient.',
  })
  declareEmergency(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('reason') reason: string,
  ) {
    return this.emergencies.declare(actor.id, patientId, reason);
  }
}
