import { Module } from '@nestjs/common';
import { AuditModule } from '../audit';
import { ConsentModule } from '../consent';
import { FederatedModule } from '../federated/federated.module';
import { LedgerModule } from '../ledger';
import { PatientsModule } from '../patients';
import { RecordsModule } from '../records';
import { RecordCryptoModule } from '../records/crypto';
import { AiDecisionSettings } from './ai-settings';
import { Assessments } from './assessments.service';
import { DecisionAccess } from './decision-access';
import { DecisionRepository } from './decision-repository';
import { DecisionSeal } from './decision-seal';
import { DecisionVerifier } from './decision-verifier';
import { DecisionsResolver, PatientAiDecisionsResolver } from './decisions.resolver';
import { Deployments } from './deployments.service';

/** Deployed models, consent-gated risk assessments and their ledger records (ARCHITECTURE 7b). */
@Module({
  imports: [
    AuditModule,
    ConsentModule,
    FederatedModule,
    LedgerModule,
    PatientsModule,
    RecordsModule,
    RecordCryptoModule,
  ],
  providers: [
    DecisionRepository,
    Deployments,
    DecisionSeal,
    DecisionAccess,
    AiDecisionSettings,
    Assessments,
    DecisionVerifier,
    DecisionsResolver,
    PatientAiDecisionsResolver,
  ],
  exports: [Deployments],
})
export class DecisionsModule {}
