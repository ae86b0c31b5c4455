import { Args, Context, ID, Info, Int, Mutation, Query, Resolver } from '@nestjs/graphql';
import { GraphQLResolveInfo, responsePathAsArray } from 'graphql';
import { Actor, ConsentChecked, CurrentActor, Roles } from '../auth';
import { PartialErrors } from '../common/partial-errors';
import {
  CreateRecordInput,
  HealthRecordModel,
  IntegrityReportModel,
  RecordPageModel,
} from './record.model';
import { RecordsService, unreadableRecord } from './records.service';

@Resolver(() => HealthRecordModel)
export class RecordsResolver {
  constructor(private readonly service: RecordsService) {}

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => RecordPageModel, {
    description:
      "A page of a patient's records, newest first. A record that fails its integrity check is withheld: to its patient an error naming it is returned beside the page; to a grantee it is absent, and so is a record stored at an older version than the ledger's latest (rolled back), which its patient sees flagged MISMATCH. code: a FHIR token (`system|code`, `code`, `|code` or `system|`) matched against the main code; since/until bound effectiveAt (since ≤ effectiveAt < until).",
  })
  async records(
    @CurrentActor() actor: Actor,
    @Context('partialErrors') partialErrors: PartialErrors,
    @Info() info: GraphQLResolveInfo,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('resourceType', { type: () => String, nullable: true }) resourceType?: string | null,
    @Args('category', { type: () => String, nullable: true }) category?: string | null,
    @Args('code', { type: () => String, nullable: true }) code?: string | null,
    @Args('since', {
      type: () => Date,
      nullable: true,
      description: 'Records whose effectiveAt is at or after this instant (inclusive).',
    })
    since?: Date | null,
    @Args('until', {
      type: () => Date,
      nullable: true,
      description: 'Records whose effectiveAt is before this instant (exclusive).',
    })
    until?: Date | null,
    @Args('first', { type: () => Int, nullable: true }) first?: number | null,
    @Args('after', { type: () => String, nullable: true }) after?: string | null,
  ) {
    const page = await this.service.list(actor, patientId, {
      resourceType,
      category,
      code,
      since,
      until,
      first,
      after,
    });
    // Items are non-null in the contract: a withheld record is reported beside the page.
    const path = responsePathAsArray(info.path);
    for (const id of page.withheld) partialErrors.add(unreadableRecord(id), path);
    return page;
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
      "Checks a record against its anchor on the ledger itself, and reports both hashes; of a record rolled back, the ledger's latest anchor (ledgerVersion). A record that fails its check is NOT_FOUND to a grantee.",
  })
  verifyRecord(@CurrentActor() actor: Actor, @Args('id', { type: () => ID }) id: string) {
    return this.service.verify(actor, id);
  }

  @Roles('PATIENT', 'CLINICIAN')
  @Mutation(() => HealthRecordModel, {
    description:
      "Adds a record to the caller's own profile, or, for a clinician, to the patient named by input.patientId under an active WRITE grant (purpose TREATMENT) that covers the record; a clinician's write is in the patient's access log.",
  })
  createRecord(@CurrentActor() actor: Actor, @Args('input') input: CreateRecordInput) {
    return this.service.create(actor, input);
  }
}
