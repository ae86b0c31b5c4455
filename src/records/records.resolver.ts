import { Args, ID, Int, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Actor, ConsentChecked, CurrentActor, Roles } from '../auth';
import {
  CreateRecordInput,
  HealthRecordModel,
  IntegrityReportModel,
  RecordPageModel,
} from './record.model';
import { RecordsService } from './records.service';

@Resolver(() => HealthRecordModel)
export class RecordsResolver {
  constructor(private readonly service: RecordsService) {}

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => RecordPageModel, { description: "A page of a patient's records, newest first." })
  records(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('resourceType', { type: () => String, nullable: true }) resourceType?: string | null,
    @Args('category', { type: () => String, nullable: true }) category?: string | null,
    @Args('first', { type: () => Int, nullable: true }) first?: number | null,
    @Args('after', { type: () => String, nullable: true }) after?: string | null,
  ) {
    return this.service.list(actor, patientId, { resourceType, category, first, after });
  }

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => HealthRecordModel, { nullable: true })
  record(@CurrentActor() actor: Actor, @Args('id', { type: () => ID }) id: string) {
    return this.service.get(actor, id);
  }

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => IntegrityReportModel, {
    description:
      'Checks a record against its anchor on the ledger itself, and reports both hashes.',
  })
  verifyRecord(@CurrentActor() actor: Actor, @Args('id', { type: () => ID }) id: string) {
    return this.service.verify(actor, id);
  }

  @Roles('PATIENT')
  @Mutation(() => HealthRecordModel)
  createRecord(@CurrentActor() actor: Actor, @Args('input') input: CreateRecordInput) {
    return this.service.create(actor, input);
  }
}
