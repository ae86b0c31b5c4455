import { Args, ID, Int, Query, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, hasRole, Roles } from '../auth';
import { ForbiddenError, NotFoundError } from '../common/errors';
import { PatientsService } from '../patients';
import { AccessEventPageModel } from './access-event.model';
import { AccessLog } from './access-log';
import { AccessLogVerificationModel, AccessLogVerifier } from './access-log-verification';

@Resolver()
export class AuditResolver {
  constructor(
    private readonly log: AccessLog,
    private readonly patients: PatientsService,
    private readonly verifier: AccessLogVerifier,
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

  @Roles('PATIENT', 'ADMIN')
  @Query(() => AccessLogVerificationModel, {
    description:
      "Checks the patient's access log against the ledger: its hash chain up to the head anchored there, and that every permitted access was justified by a grant or emergency the ledger held at that time. For the patient and for ADMIN.",
  })
  async verifyAccessLog(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
  ): Promise<AccessLogVerificationModel> {
    const own = hasRole(actor, 'PATIENT') ? await this.patients.patientIdOf(actor) : null;
    if (own !== patientId && !hasRole(actor, 'ADMIN')) {
      throw new ForbiddenError('A patient verifies only their own access log.');
    }
    if (!(await this.patients.exists(patientId))) {
      throw new NotFoundError('No patient with that id.');
    }
    await this.log.settled();
    return this.verifier.verify(patientId);
  }
}
