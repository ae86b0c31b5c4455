import { Args, ID, Mutation, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, Roles } from '../../auth';
import { JSONScalar } from '../../common/scalars';
import { BundleImportService } from './bundle-import.service';
import { ImportReportModel } from './import.model';

@Resolver(() => ImportReportModel)
export class ImportResolver {
  constructor(private readonly service: BundleImportService) {}

  @Roles('PATIENT', 'CLINICIAN')
  @Mutation(() => ImportReportModel, {
    description:
      "A FHIR R4 Bundle (transaction, batch or collection) into the patient's records, all or nothing. patientId defaults to the calling patient's own; a clinician needs a WRITE grant covering every entry.",
  })
  importBundle(
    @CurrentActor() actor: Actor,
    @Args('bundle', { type: () => JSONScalar }) bundle: unknown,
    @Args('patientId', { type: () => ID, nullable: true }) patientId?: string | null,
  ) {
    return this.service.import(actor, bundle, patientId);
  }
}
