import { Args, ID, Query, Resolver } from '@nestjs/graphql';
import { Actor, AnyRole, CurrentActor, hasRole } from '../auth';
import { NotFoundError } from '../common/errors';
import { PatientModel, PatientsService } from '../patients';
import { MyPatientsService } from './my-patients.service';

/**
 * `patient(id)` lives beside the consent rule because who may see a profile is a consent
 * question: the patient themself, and a clinician who has the patient on their myPatients list
 * (a grant in force to them or their organisation, or a running emergency). Anyone else gets
 * NOT_FOUND, as for an id that names no one, so the answer does not tell that a patient exists.
 */
@Resolver(() => PatientModel)
export class PatientProfileResolver {
  constructor(
    private readonly patients: PatientsService,
    private readonly myPatients: MyPatientsService,
  ) {}

  @AnyRole()
  @Query(() => PatientModel, { nullable: true })
  async patient(
    @CurrentActor() actor: Actor,
    @Args('id', { type: () => ID }) id: string,
  ): Promise<PatientModel> {
    if ((await this.patients.patientIdOf(actor)) === id) return this.patients.profile(id);
    if (hasRole(actor, 'CLINICIAN') && (await this.myPatients.reaches(actor, id))) {
      const found = (await this.patients.profiles([id])).get(id);
      if (found) return found;
    }
    throw new NotFoundError('No patient with that id.');
  }
}
