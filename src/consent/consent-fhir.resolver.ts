import { Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { Roles } from '../auth';
import { JSONScalar } from '../common/scalars';
import { ConsentGrantModel } from './consent.model';
import { grantAsFhirConsent } from './fhir-consent';

@Resolver(() => ConsentGrantModel)
export class ConsentFhirResolver {
  // Whoever was shown the grant (the patient, or the clinician it names) may see it as FHIR.
  @Roles('PATIENT', 'CLINICIAN')
  @ResolveField('fhir', () => JSONScalar, {
    description: 'The grant as a FHIR R4 Consent resource.',
  })
  fhir(@Parent() grant: ConsentGrantModel) {
    return grantAsFhirConsent(grant);
  }
}
