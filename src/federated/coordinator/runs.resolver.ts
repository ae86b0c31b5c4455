import { Args, ID, Int, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, Roles } from '../../auth';
import { StudyModel } from '../studies/study.model';
import { Coordinator } from './coordinator.service';
import {
  ModelUpdateInfoModel,
  OpenRoundModel,
  RoundMetricsModel,
  TrainingRunModel,
} from './run.model';

@Resolver(() => TrainingRunModel)
export class RunsResolver {
  constructor(private readonly coordinator: Coordinator) {}

  @Roles('RESEARCHER')
  @Mutation(() => TrainingRunModel, { description: 'Starts training a study for `rounds` rounds.' })
  startTraining(
    @CurrentActor() actor: Actor,
    @Args('studyId', { type: () => ID }) studyId: string,
    @Args('rounds', { type: () => Int }) rounds: number,
  ) {
    return this.coordinator.start(actor, studyId, rounds);
  }

  @Roles('RESEARCHER')
  @Mutation(() => TrainingRunModel)
  cancelTraining(@CurrentActor() actor: Actor, @Args('runId', { type: () => ID }) runId: string) {
    return this.coordinator.cancel(actor, runId);
  }

  /** Models and metrics, never records: researchers, administrators and nodes may look. */
  @Roles('RESEARCHER', 'ADMIN', 'NODE')
  @Query(() => TrainingRunModel, { nullable: true })
  trainingRun(@Args('id', { type: () => ID }) id: string) {
    return this.coordinator.get(id);
  }

  @Roles('NODE')
  @Query(() => [OpenRoundModel], {
    description: 'Rounds waiting for updates (for training nodes).',
  })
  openRounds(@CurrentActor() actor: Actor) {
    return this.coordinator.openRounds(actor.id);
  }

  @ResolveField(() => [RoundMetricsModel])
  metrics(@Parent() run: TrainingRunModel) {
    return this.coordinator.metrics(run.id);
  }

  @ResolveField(() => [ModelUpdateInfoModel])
  updates(
    @Parent() run: TrainingRunModel,
    @Args('round', { type: () => Int, nullable: true }) round?: number | null,
  ) {
    return this.coordinator.updates(run.id, round);
  }
}

@Resolver(() => StudyModel)
export class StudyRunsResolver {
  constructor(private readonly coordinator: Coordinator) {}

  @ResolveField(() => [TrainingRunModel])
  runs(@Parent() study: StudyModel) {
    return this.coordinator.runsOfStudy(study.id);
  }
}
