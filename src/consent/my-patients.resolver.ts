import { Args, Int, Query, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, Roles } from '../auth';
import { MyPatientsService } from './my-patients.service';
import { PatientAccessPageModel } from './my-patients.model';

@Resolver(() => PatientAccessPageModel)
export class MyPatientsResolver {
  constructor(private readonly service: MyPatientsService) {}

  // Not @ConsentChecked: like `consents`, it answers from the grants (and emergencies) that
  // name the caller, which is what a consent check would ask; it reads no record.
  @Roles('CLINICIAN')
  @Query(() => PatientAccessPageModel, {
    description:
      'For a clinician: the patients with an active grant to them or their organisation, or an emergency.',
  })
  myPatients(
    @CurrentActor() actor: Actor,
    @Args('first', { type: () => Int, nullable: true }) first?: number | null,
    @Args('after', { type: () => String, nullable: true }) after?: string | null,
  ) {
    return this.service.page(actor, first, after);
  }
}
