import { Context, Info, Query, Resolver } from '@nestjs/graphql';
import { GraphQLResolveInfo, responsePathAsArray } from 'graphql';
import { Actor, ConsentChecked, CurrentActor, Roles } from '../../auth';
import { PartialErrors } from '../../common/partial-errors';
import { JSONScalar } from '../../common/scalars';
import { unreadableRecord } from '../records.service';
import { RecordExportService } from './export.service';

@Resolver()
export class ExportResolver {
  constructor(private readonly service: RecordExportService) {}

  @Roles('PATIENT')
  @ConsentChecked()
  @Query(() => JSONScalar, {
    description:
      "The calling patient's records and grants (as Consent resources) as one FHIR R4 Bundle. A record that fails its integrity check is left out, and an error naming it is returned beside the bundle.",
  })
  async exportMyData(
    @CurrentActor() actor: Actor,
    @Context('partialErrors') partialErrors: PartialErrors,
    @Info() info: GraphQLResolveInfo,
  ) {
    const { bundle, withheld } = await this.service.exportFor(actor);
    const path = responsePathAsArray(info.path);
    for (const id of withheld) partialErrors.add(unreadableRecord(id), path);
    return bundle;
  }
}
