export { ConsentGrantEntity, EmergencyAccessEntity } from './consent-grant.entity';
export * from './consent.model';
export { ConsentProjection } from './consent-projection';
export { ConsentModule } from './consent.module';
export { ConsentProjector } from './consent.projector';
export { ConsentService } from './consent.service';
export {
  AccessBasis,
  EmergencyBasis,
  Decision,
  PolicyDecisionPoint,
} from './policy-decision-point';
export { ConsentReconciliation } from './consent-reconciliation';
export {
  grantAsFhirConsent,
  GRANT_IDENTIFIER_SYSTEM,
  isGrantConsent,
  RECORD_CATEGORY_SYSTEM,
} from './fhir-consent';
