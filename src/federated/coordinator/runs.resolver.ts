import {
  Args,
  Context,
  ID,
  Int,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Actor, CurrentActor, hasRole, Roles } from '../../auth';
import { BadUserInputError } from '../../common/errors';
import { RequestLoader } from '../../common/request-loader';
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
  /** A list of runs reads their metrics in one query, not one each. */
  private readonly metricsOf = new RequestLoader<string, RoundMetricsModel[]>((ids) =>
    this.coordinator.metricsOfRuns(ids),
  );

  /**
   * A list of runs reads their updates in one query per filter (round, node) asked, not one
   * per run. Keys are JSON of [runId, round, nodeId].
   */
  private readonly updatesOf = new RequestLoader<string, ModelUpdateInfoModel[]>(async (keys) => {
    const asked = keys.map((k) => JSON.parse(k) as [string, number | null, string | null]);
    const filters = new Map<string, { round: number | null; nodeId: string | null }>();
    for (const [, round, nodeId] of asked) {
      filters.set(JSON.stringify([round, nodeId]), { round, nodeId });
    }
    const found = new Map<string, ModelUpdateInfoModel[]>();
    for (const [filter, { round, nodeId }] of filters) {
      const runIds = asked
        .filter(([, r, n]) => JSON.stringify([r, n]) === filter)
        .map(([id]) => id);
      const updates = await this.coordinator.updatesOfRuns(runIds, round, nodeId ?? undefined);
      runIds.forEach((id, i) => found.set(JSON.stringify([id, round, nodeId]), updates[i]));
    }
    return keys.map((k) => found.get(k) ?? []);
  });

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
  async trainingRun(@CurrentActor() actor: Actor, @Args('id', { type: () => ID }) id: string) {
    await this.coordinator.requireNodeOrStaff(actor);
    return this.coordinator.get(id);
  }

  @Roles('NODE')
  @Query(() => [OpenRoundModel], {
    description: 'Rounds waiting for updates (for training nodes).',
  })
  async openRounds(@CurrentActor() actor: Actor) {
    await this.coordinator.requireNodeOrStaff(actor);
    return this.coordinator.openRounds(actor.id);
  }

  @Roles('RESEARCHER', 'ADMIN', 'NODE')
  @ResolveField(() => [RoundMetricsModel])
  metrics(@Parent() run: TrainingRunModel, @Context() request: object) {
    return this.metricsOf.load(request, run.id);
  }

  /** A node sees its own updates only; researchers and administrators see every node's. */
  @Roles('RESEARCHER', 'ADMIN', 'NODE')
  @ResolveField(() => [ModelUpdateInfoModel])
  updates(
    @CurrentActor() actor: Actor,
    @Parent() run: TrainingRunModel,
    @Context() request: object,
    @Args('round', { type: () => Int, nullable: true }) round?: number | null,
  ) {
    // Rounds count from 1, as the /fl routes take them.
    if (round !== undefined && round !== null && round < 1) {
      throw new BadUserInputError('round must be a round number (1 or more)', 'round');
    }
    const everyNode = hasRole(actor, 'RESEARCHER') || hasRole(actor, 'ADMIN');
    const nodeId = everyNode ? null : actor.id;
    return this.updatesOf.load(request, JSON.stringify([run.id, round ?? null, nodeId]));
  }
}

@Resolver(() => StudyModel)
export class StudyRunsResolver {
  /** A list of studies reads their runs in one query, not one each. */
  private readonly runsOf = new RequestLoader<string, TrainingRunModel[]>((ids) =>
    this.coordinator.runsOfStudies(ids),
  );

  constructor(private readonly coordinator: Coordinator) {}

  /** Runs, their updates and reasons are the researchers' and the nodes' business. */
  @Roles('RESEARCHER', 'ADMIN')
  @ResolveField(() => [TrainingRunModel])
  runs(@Parent() study: StudyModel, @Context() request: object) {
    return this.runsOf.load(request, study.id);
  }
}
