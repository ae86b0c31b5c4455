import { Args, Context, ID, Info, Int, Mutation, Query, Resolver } from '@nestjs/graphql';
import { GraphQLResolveInfo, responsePathAsArray } from 'graphql';
import { Actor, ConsentChecked, CurrentActor, Roles } from '../../auth';
import { PartialErrors } from '../../common/partial-errors';
import { JSONScalar } from '../../common/scalars';
import { recordModel } from '../record-access';
import { HealthRecordModel } from '../record.model';
import { unreadableRecord } from '../records.service';
import { RecordAmendments } from './record-amendments';
import { missingVersions, RecordHistory } from './record-history';

@Resolver(() => HealthRecordModel)
export class RecordHistoryResolver {
  constructor(
    private readonly amendments: RecordAmendments,
    private readonly versions: RecordHistory,
  ) {}

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => [HealthRecordModel], {
    description:
      'Every version of a record, newest first, each with its own integrity. A version that fails its integrity check is withheld, and an error naming the record is returned beside the list.',
  })
  async recordHistory(
    @CurrentActor() actor: Actor,
    @Context('partialErrors') partialErrors: PartialErrors,
    @Info() info: GraphQLResolveInfo,
    @Args('id', { type: () => ID }) id: string,
  ) {
    const history = await this.versions.history(actor, id);
    const path = responsePathAsArray(info.path);
    for (const w of history.withheld) partialErrors.add(unreadableRecord(w.recordId), path);
    if (history.missing.length) partialErrors.add(missingVersions(id, history.missing), path);
    return history.items;
  }

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Mutation(() => HealthRecordModel, {
    description: 'A new version; a stale expectedVersion gives CONFLICT.',
  })
  async updateRecord(
    @CurrentActor() actor: Actor,
    @Args('id', { type: () => ID }) id: string,
    @Args('resource', { type: () => JSONScalar }) resource: unknown,
    @Args('expectedVersion', { type: () => Int }) expectedVersion: number,
    @Args('category', {
      type: () => String,
      nullable: true,
      description:
        "Files the record anew under this category (the patient: any; a grantee: only the one its content carries). Left out, the record keeps the category it is filed under unless its content's own category changes.",
    })
    category?: string | null,
  ) {
    const {
      row,
      resource: stored,
      anchor,
    } = await this.amendments.update(actor, id, resource, expectedVersion, category);
    return recordModel({ row, resource: stored, hash: row.contentHash }, anchor);
  }
}
