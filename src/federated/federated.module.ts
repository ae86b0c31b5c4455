import { Module } from '@nestjs/common';
import { StudiesResolver } from './studies/studies.resolver';
import { StudiesService } from './studies/studies.service';

/** Federated learning: studies and training nodes (rounds and the coordinator come next). */
@Module({
  providers: [StudiesService, StudiesResolver],
  exports: [StudiesService],
})
export class FederatedModule {}
