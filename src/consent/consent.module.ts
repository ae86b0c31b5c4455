import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { AuditModule } from '../audit';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordCryptoModule, RowAuthenticator } from '../records/crypto';
import { ConsentCheckInterceptor } from './consent-check.interceptor';
import { ConsentReconciliation } from './consent-reconciliation';
import { GrantAuthenticity } from './grant-authenticity';
import { ConsentProjection } from './consent-projection';
import { ConsentProjector } from './consent.projector';
import { ConsentFhirResolver } from './consent-fhir.resolver';
import { ConsentResolver } from './consent.resolver';
import { ConsentService } from './consent.service';
import { EmergencyService } from './emergency.service';
import { MyPatientsResolver } from './my-patients.resolver';
import { MyPatientsService } from './my-patients.service';
import { PatientKeysResolver, SignedConsentResolver } from './patient-keys.resolver';
import { PatientKeysService } from './patient-keys.service';
import { PatientProfileResolver } from './patient-profile.resolver';
import { PolicyDecisionPoint } from './policy-decision-point';
import { SignedConsentSettings } from './signed-consent-settings';

@Module({
  imports: [LedgerModule, PatientsModule, AuditModule, RecordCryptoModule],
  providers: [
    {
      provide: GrantAuthenticity,
      inject: [RowAuthenticator],
      useFactory: (rows: RowAuthenticator) => new GrantAuthenticity(rows),
    },
    ConsentReconciliation,
    ConsentProjection,
    ConsentProjector,
    ConsentService,
    EmergencyService,
    PolicyDecisionPoint,
    ConsentResolver,
    ConsentFhirResolver,
    MyPatientsService,
    MyPatientsResolver,
    PatientProfileResolver,
    SignedConsentSettings,
    PatientKeysService,
    PatientKeysResolver,
    SignedConsentResolver,
    { provide: APP_INTERCEPTOR, useClass: ConsentCheckInterceptor },
  ],
  exports: [PolicyDecisionPoint, ConsentService, ConsentProjector, ConsentReconciliation],
})
export class ConsentModule {}
