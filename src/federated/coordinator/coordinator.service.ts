// The federated coordinator (ARCHITECTURE section 7): what resolvers, routes and the local
// nodes call. It starts and cancels runs and answers about them; updates go through the
// intake (UpdateIntake) and rounds are closed by the RoundCloser once their quorum is met
// (or failed at their deadline). All state is in PostgreSQL (RunRepository), so a restarted
// API resumes its runs.
import { Injectable, Logger } from '@nestjs/common';
import { randomInt, randomUUID } from 'node:crypto';
import { Actor, hasRole } from '../../auth';
import {
  BadUserInputError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
} from '../../common/errors';
import { initialWeights } from '../model/architecture';
import { modelHash } from '../provenance';
import { createStrategy } from '../strategies';
import { StudyEntity } from '../studies/study.entity';
import { StudiesService } from '../studies/studies.service';
import { CoordinatorEvents, roundOpened } from './coordinator-events';
import { RoundCloser } from './round-closer';
import { RunRepository } from './run-repository';
import {
  ModelUpdateInfoModel,
  OpenRoundModel,
  RoundMetricsModel,
  RunStatus,
  TrainingRunModel,
  UpdateStatus,
} from './run.model';
import { SubmissionResult, UpdateIntake } from './update-intake';

export type { SubmissionResult } from './update-intake';

const MAX_ROUNDS = 100;

@Injectable()
export class Coordinator {
  private readonly logger = new Logger(Coordinator.name);

  constructor(
    private readonly repo: RunRepository,
    private readonly intake: UpdateIntake,
    private readonly closer: RoundCloser,
    private readonly studies: StudiesService,
    /** 'open' as rounds open, 'round' as they end (see CoordinatorEventMap). */
    readonly events: CoordinatorEvents,
  ) {}

  async start(actor: Actor, studyId: string, rounds: number): Promise<TrainingRunModel> {
    const study = await this.ownStudy(actor, studyId);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) {
      throw new BadUserInputError(
        `rounds must be a whole number from 1 to ${MAX_ROUNDS}`,
        'rounds',
      );
    }
    const weights = initialWeights(study.model, study.features.length, randomInt(2 ** 31));
    const hash = modelHash(weights);
    const runId = randomUUID();
    await this.repo.transaction(async (m) => {
      await this.repo.insertRun(m, {
        id: runId,
        studyId: study.id,
        rounds,
        modelHash: hash,
        startedBy: actor.id,
      });
      await this.repo.storeVersion(m, runId, 0, weights, hash);
      await this.repo.openRound(m, runId, 1, hash, study.roundDeadlineMs);
    });
    this.events.emit('open', roundOpened(runId, 1, study));
    return (await this.repo.run(runId))!;
  }

  async cancel(actor: Actor, runId: string): Promise<TrainingRunModel> {
    const run = await this.requireRun(runId);
    await this.ownStudy(actor, run.studyId);
    if (run.status !== RunStatus.RUNNING && run.status !== RunStatus.PENDING) {
      throw new ConflictError(`This run is already ${run.status.toLowerCase()}.`);
    }
    await this.repo.transaction((m) => this.repo.cancelRun(m, runId));
    return (await this.repo.run(runId))!;
  }

  /**
   * A NODE token reads runs and models only as a registered training node that is not revoked
   * (as it sends updates): a token with the role alone names no one the coordinator knows.
   */
  async requireNodeOrStaff(actor: Actor): Promise<void> {
    if (hasRole(actor, 'RESEARCHER') || hasRole(actor, 'ADMIN')) return;
    if (!(await this.repo.liveNode(actor.id))) {
      throw new ForbiddenError('This token names no registered training node.');
    }
  }

  get(runId: string): Promise<TrainingRunModel | null> {
    return this.repo.run(runId);
  }

  /**
   * Rounds open now (for nodes that start while a run is under way), with whether `nodeId`
   * has an update accepted in each (after a rejection it may send another). Rounds of a
   * study withheld (its row is not what the ledger registered) are not offered.
   */
  async openRounds(nodeId?: string): Promise<OpenRoundModel[]> {
    const rows = await this.repo.openRounds(nodeId ?? '');
    const studies = new Map(
      await Promise.all(
        [...new Set(rows.map((r) => r.studyId))].map(
          async (id) => [id, await this.studies.get(id)] as const,
        ),
      ),
    );
    return rows.flatMap((r) => {
      const study = studies.get(r.studyId);
      return study ? [{ ...r, clientConfig: createStrategy(study.strategy).clientConfig() }] : [];
    });
  }

  /** The nodes with an update accepted in this round (a rejected one may send again). */
  submittedNodes(runId: string, round: number): Promise<Set<string>> {
    return this.repo.submittedNodes(runId, round);
  }

  /** Each study's runs, in the studies' order (one query for them all). */
  runsOfStudies(studyIds: readonly string[]): Promise<TrainingRunModel[][]> {
    return this.repo.runsOfStudies(studyIds);
  }

  async metrics(runId: string): Promise<RoundMetricsModel[]> {
    const [metrics] = await this.repo.metricsOfRuns([runId]);
    return metrics;
  }

  /** Each run's closed rounds' metrics, in the runs' order (one query for them all). */
  metricsOfRuns(runIds: readonly string[]): Promise<RoundMetricsModel[][]> {
    return this.repo.metricsOfRuns(runIds);
  }

  /** Each run's updates, of one round and one node when given, in the runs' order (one query). */
  updatesOfRuns(
    runIds: readonly string[],
    round?: number | null,
    nodeId?: string,
  ): Promise<ModelUpdateInfoModel[][]> {
    return this.repo.updateInfosOfRuns(runIds, round, nodeId);
  }

  /** The global model a round starts from, as float32 little-endian bytes. */
  async roundModel(runId: string, round: number): Promise<Buffer> {
    // The model the round starts from, once the round has opened (beyond the run's last
    // round, the final model is the run's model, not a round's).
    const weights = await this.repo.roundStartVersion(runId, round);
    if (!weights) throw new NotFoundError('No such round of that training run.');
    return weights;
  }

  /** The latest global model of a run, with the study that says how to read it. */
  async latestModel(runId: string): Promise<{ weights: Buffer; study: StudyEntity }> {
    const run = await this.requireRun(runId);
    const latest = await this.repo.latestVersion(runId);
    // While the run trains, its latest model may be the initial one; a run that ended before
    // any round closed has no model to offer (its initial weights were never trained).
    const training = run.status === RunStatus.RUNNING || run.status === RunStatus.PENDING;
    if (!latest || (latest.round === 0 && !training)) {
      throw new NotFoundError('No trained model for that training run: no round of it closed.');
    }
    return { weights: latest.weights, study: await this.studyOf(run) };
  }

  /**
   * Receives one update; rejected ones are recorded with their reason, never silently dropped.
   * `after`: an in-process node's logging of its examples' use; the update is checked
   * meanwhile but stored only once it is done, and not at all if it fails. `from`: the node
   * sending it, as its token names it (UpdateIntake.receive).
   */
  async submit(
    runId: string,
    round: number,
    manifestJws: string | undefined,
    body: Buffer,
    options: { after?: Promise<unknown>; from?: string } = {},
  ): Promise<SubmissionResult> {
    const { result, study, consentEnded } = await this.intake.receive(
      runId,
      round,
      manifestJws,
      body,
      options,
    );
    // Refused because a contributor's consent ended since the node selected them: its node may
    // train the round again without them, as after a rejection at aggregation.
    if (consentEnded) this.events.emit('reopen', roundOpened(runId, round, study));
    if (
      result.status === UpdateStatus.ACCEPTED &&
      (await this.repo.acceptedCount(runId, round)) >= study.minNodes
    ) {
      // The update is accepted whatever happens next; a failed aggregation (say the ledger
      // is down) leaves the round to the closer's sweep, which tries again.
      await this.closer
        .close(runId, round)
        .catch((e: Error) =>
          this.logger.warn({ runId, round, errorType: e.name }, 'aggregation deferred'),
        );
    }
    return result;
  }

  private async requireRun(runId: string): Promise<TrainingRunModel> {
    const run = await this.repo.run(runId);
    if (!run) throw new NotFoundError('No training run with that id.');
    return run;
  }

  private async studyOf(run: TrainingRunModel): Promise<StudyEntity> {
    const study = await this.studies.get(run.studyId);
    if (!study) throw new NotFoundError('No study with that id.');
    return study;
  }

  /** The study as the ledger registered it (owner included): a row changed here is not found. */
  private async ownStudy(actor: Actor, studyId: string): Promise<StudyEntity> {
    const study = await this.studies.get(studyId);
    if (!study) throw new NotFoundError('No study with that id.');
    if (study.ownerId !== actor.id) {
      throw new ForbiddenError('Only the researcher who owns this study can run it.');
    }
    return study;
  }
}
