import { Args, Context, ID, Info, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { GraphQLResolveInfo, responsePathAsArray } from 'graphql';
import { Actor, ConsentChecked, CurrentActor, Roles } from '../../auth';
import { PartialErrors } from '../../common/partial-errors';
import { HealthRecordModel } from '../record.model';
import { unreadableRecord } from '../records.service';
import { clinicalDate } from './clinical-facts';
import { LatestObservationsQuery } from './latest-observations';

@Resolver(() => HealthRecordModel)
export class RecordSearchResolver {
  constructor(private readonly latest: LatestObservationsQuery) {}

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => [HealthRecordModel], {
    description:
      "The newest Observation with a result (not entered in error, cancelled or only registered) for each code (FHIR tokens, matched against the main code or a component's, as combo-code), for one patient; a record newest for two codes is listed once.",
  })
  async latestObservations(
    @CurrentActor() actor: Actor,
    @Context('partialErrors') partialErrors: PartialErrors,
    @Info() info: GraphQLResolveInfo,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('codes', { type: () => [String] }) codes: string[],
  ) {
    const found = await this.latest.latest(actor, patientId, codes);
    const path = responsePathAsArray(info.path);
    for (const id of found.withheld) partialErrors.add(unreadableRecord(id), path);
    return found.items;
  }

  /** From the decrypted resource, never from the index column (which only finds). */
  @Roles('PATIENT', 'CLINICIAN')
  @ResolveField(() => Date, {
    nullable: true,
    description:
      "The resource's clinical date (effective, onset, authoredOn, performed, …), else createdAt.",
  })
  effectiveAt(@Parent() record: HealthRecordModel): Date {
    return clinicalDate(record.resource) ?? record.createdAt;
  }
}
