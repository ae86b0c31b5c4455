import { Args, ID, Int, Query, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, Roles } from '../auth';
import { ForbiddenError } from '../common/errors';
import { PatientsService } from '../patients';
import { AccessEventPageModel } from './access-event.model';
import { AccessLog } from './access-log';

@Resolver()
export class AuditResolver {
  constructor(
    private readonly log: AccessLog,
    private readonly patients: PatientsService,
  ) {}

  @Roles('PATIENT')
  @Query(() => AccessEventPageModel, {
    description:
      'Who accessed your records, when, and under which grant or emergency; newest first.',
  })
  async accessLog(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('first', { type: () => Int, nullable: true }) first?: number | null,
    @Args('after', { type: () => String, nullable: true }) after?: string | null,
  ): Promise<AccessEventPageModel> {
    if ((await this.patients.patientIdOf(actor)) !== patientId) {
      throw new ForbiddenError('The access log is shown to the patient only.');
    }
    return this.log.page(patientId, first, after);
  }
}
