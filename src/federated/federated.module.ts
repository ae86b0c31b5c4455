import { Module } from '@nestjs/common';
import { AuditModule } from '../audit';
import { ConsentModule } from '../consent';
import { RecordsModule } from '../records';
import { LedgerModule } from '../ledger';
import { CoordinatorEvents } from './coordinator/coordinator-events';
import { Coordinator } from './coordinator/coordinator.service';
import { RoundCloser } from './coordinator/round-closer';
import { RunRepository } from './coordinator/run-repository';
import { UpdateIntake } from './coordinator/update-intake';
import { FlController } from './coordinator/fl.controller';
import { RunsResolver, StudyRunsResolver } from './coordinator/runs.resolver';
import { LocalTrainingNodes } from './node/local-nodes';
import { StudiesResolver } from './studies/studies.resolver';
import { StudiesService } from './studies/studies.service';
import { StudyRegistry } from './studies/study-registry';

/** Federated learning: studies, training nodes, and the coordinator of their runs. */
@Module({
  imports: [ConsentModule, LedgerModule, RecordsModule, AuditModule],
  controllers: [FlController],
  providers: [
    StudyRegistry,
    StudiesService,
    StudiesResolver,
    RunRepository,
    CoordinatorEvents,
    UpdateIntake,
    RoundCloser,
    Coordinator,
    RunsResolver,
    StudyRunsResolver,
    LocalTrainingNodes,
  ],
  exports: [StudiesService, Coordinator, RoundCloser],
})
export class FederatedModule {}
