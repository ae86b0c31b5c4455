import { Module } from '@nestjs/common';
import { AuditModule } from '../audit';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordCryptoModule } from '../records/crypto';
import { ConsentProjection } from './consent-projection';
import { ConsentProjector } from './consent.projector';
import { ConsentResolver } from './consent.resolver';
import { ConsentService } from './consent.service';
import { EmergencyService } from './emergency.service';
import { PolicyDecisionPoint } from './policy-decision-point';

@Module({
  imports: [LedgerModule, PatientsModule, AuditModule, RecordCryptoModule],
  providers: [
    ConsentProjection,
    ConsentProjector,
    ConsentService,
    EmergencyService,
    PolicyDecisionPoint,
    ConsentResolver,
  ],
  exports: [PolicyDecisionPoint, ConsentService, ConsentProjector],
})
export class ConsentModule {}
