import { Module } from '@nestjs/common';
import { ConsentModule } from '../consent';
import { LedgerModule } from '../ledger';
import { Coordinator } from './coordinator/coordinator.service';
import { FlController } from './coordinator/fl.controller';
import { RunsResolver, StudyRunsResolver } from './coordinator/runs.resolver';
import { StudiesResolver } from './studies/studies.resolver';
import { StudiesService } from './studies/studies.service';

/** Federated learning: studies, training nodes, and the coordinator of their runs. */
@Module({
  imports: [ConsentModule, LedgerModule],
  controllers: [FlController],
  providers: [StudiesService, StudiesResolver, Coordinator, RunsResolver, StudyRunsResolver],
  exports: [StudiesService, Coordinator],
})
export class FederatedModule {}
