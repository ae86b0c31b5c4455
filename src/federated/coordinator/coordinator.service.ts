// The federated coordinator (ARCHITECTURE section 7). It opens rounds, accepts an update only
// if its manifest is signed by a registered node, its body matches its hash and the model's
// shape, every value is finite, and every listed contributor holds an active TRAIN grant for
// the study — checked again when the round is aggregated. A round closes when the study's
// minimum of accepted updates is met (or fails at its deadline); the strategy aggregates,
// the new model is stored and its provenance recorded on the ledger. All state is in
// PostgreSQL, so a restarted API resumes its runs.
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { compactVerify, decodeJwt, importJWK } from 'jose';
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DataSource, EntityManager } from 'typeorm';
import { Actor } from '../../auth';
import {
  BadUserInputError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
} from '../../common/errors';
import { PolicyDecisionPoint } from '../../consent';
import { Ledger, LEDGER } from '../../ledger';
import { initialWeights, parameterCount } from '../model/architecture';
import { modelHash, roundRecord } from '../provenance';
import { createStrategy, StrategyName, StrategyState } from '../strategies';
import { StudyEntity, TrainingNodeEntity } from '../studies/study.entity';
import {
  ModelUpdateInfoModel,
  OpenRoundModel,
  RoundMetricsModel,
  RunStatus,
  TrainingRunModel,
  UpdateStatus,
} from './run.model';
import { parseStrategyState, serialiseStrategyState } from './strategy-state';
import { isUuid } from '../../common/ids';

const SHA256 = /^[0-9a-f]{64}$/;
const MAX_ROUNDS = 100;
const MAX_CONTRIBUTORS = 100_000;
const DEADLINE_SWEEP_MS = 1_000;

export interface SubmissionResult {
  id: string;
  status: UpdateStatus;
  reason: string | null;
}

/** What a node signs (ES256, compact JWS) about the update body it sends. */
interface Manifest {
  runId: string;
  round: number;
  nodeId: string;
  numExamples: number;
  contributors: string[];
  updateSha256: string;
  metrics?: { loss?: number; accuracy?: number; auc?: number };
}

class Rejection extends Error {}

@Injectable()
export class Coordinator implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(Coordinator.name);
  /** Rounds being closed, so two closers in this process never race. */
  private readonly closing = new Map<string, Promise<void>>();
  private sweeper?: NodeJS.Timeout;
  /**
   * Emits 'open' ({runId, round, studyId}) as rounds open, and 'round' ({runId, round,
   * status: 'CLOSED' | 'FAILED'}) as they end.
   */
  readonly events = new EventEmitter();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly pdp: PolicyDecisionPoint,
  ) {}

  onApplicationBootstrap(): void {
    // Deadlines are checked from the database, so rounds left open by a restart close too.
    this.sweeper = setInterval(() => void this.closeExpiredRounds(), DEADLINE_SWEEP_MS);
    this.sweeper.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.allSettled(this.closing.values());
  }

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
    const now = new Date();
    await this.db.transaction(async (m) => {
      await m.query(
        `INSERT INTO training_runs (id, study_id, status, rounds, current_round, model_hash,
           started_by, created_at, updated_at) VALUES ($1, $2, 'RUNNING', $3, 1, $4, $5, $6, $6)`,
        [runId, study.id, rounds, hash, actor.id, now],
      );
      await this.storeVersion(m, runId, 0, weights, hash);
      await this.openRound(m, runId, 1, hash, study);
    });
    this.events.emit('open', {
      runId,
      round: 1,
      studyId: study.id,
      clientConfig: createStrategy(study.strategy).clientConfig(),
    });
    return this.get(runId) as Promise<TrainingRunModel>;
  }

  async cancel(actor: Actor, runId: string): Promise<TrainingRunModel> {
    const run = await this.requireRun(runId);
    await this.ownStudy(actor, run.studyId);
    if (run.status !== RunStatus.RUNNING && run.status !== RunStatus.PENDING) {
      throw new ConflictError(`This run is already ${run.status.toLowerCase()}.`);
    }
    await this.db.transaction(async (m) => {
      await m.query(
        `UPDATE training_runs SET status = 'CANCELLED', updated_at = now() WHERE id = $1`,
        [runId],
      );
      await m.query(
        `UPDATE training_rounds SET status = 'FAILED', closed_at = now(), failure = 'cancelled'
         WHERE run_id = $1 AND status = 'OPEN'`,
        [runId],
      );
      await m.query(`UPDATE model_updates SET body = NULL WHERE run_id = $1`, [runId]);
    });
    return (await this.get(runId))!;
  }

  async get(runId: string): Promise<TrainingRunModel | null> {
    if (!isUuid(runId)) return null;
    const [row] = await this.db.query(`SELECT * FROM training_runs WHERE id = $1`, [runId]);
    return row ? toRun(row) : null;
  }

  /**
   * Rounds open now (for nodes that start while a run is under way), with whether `nodeId`
   * has already sent its update.
   */
  async openRounds(nodeId?: string): Promise<OpenRoundModel[]> {
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT r.run_id, r.round, t.study_id, r.deadline_at, s.strategy,
              EXISTS (SELECT 1 FROM model_updates u WHERE u.run_id = r.run_id
                        AND u.round = r.round AND u.node_id = $1) AS submitted
       FROM training_rounds r JOIN training_runs t ON t.id = r.run_id
       JOIN studies s ON s.id = t.study_id
       WHERE r.status = 'OPEN' AND t.status = 'RUNNING'
       ORDER BY r.opened_at`,
      [nodeId ?? ''],
    );
    return rows.map((r) => ({
      runId: r.run_id as string,
      round: r.round as number,
      studyId: r.study_id as string,
      deadlineAt: r.deadline_at as Date,
      submitted: r.submitted as boolean,
      // What the strategy asks of local training (FedProx's mu), sent with the round.
      clientConfig: createStrategy(r.strategy as StrategyName).clientConfig(),
    }));
  }

  /** Whether `nodeId` already sent an update for this round (accepted or not). */
  async hasSubmitted(runId: string, round: number, nodeId: string): Promise<boolean> {
    const [row] = await this.db.query(
      `SELECT 1 FROM model_updates WHERE run_id = $1 AND round = $2 AND node_id = $3 LIMIT 1`,
      [runId, round, nodeId],
    );
    return !!row;
  }

  async runsOfStudy(studyId: string): Promise<TrainingRunModel[]> {
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT * FROM training_runs WHERE study_id = $1 ORDER BY created_at DESC, id`,
      [studyId],
    );
    return rows.map(toRun);
  }

  async metrics(runId: string): Promise<RoundMetricsModel[]> {
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT round, metrics, epsilon, num_updates, num_contributors FROM training_rounds
       WHERE run_id = $1 AND status = 'CLOSED' ORDER BY round`,
      [runId],
    );
    return rows.map((r) => {
      const m = (r.metrics ?? {}) as { loss?: number; accuracy?: number; auc?: number };
      return {
        round: r.round as number,
        loss: m.loss ?? null,
        accuracy: m.accuracy ?? null,
        auc: m.auc ?? null,
        numContributors: (r.num_contributors as number) ?? 0,
        numUpdates: (r.num_updates as number) ?? 0,
        epsilon: (r.epsilon as number | null) ?? null,
      };
    });
  }

  async updates(runId: string, round?: number | null): Promise<ModelUpdateInfoModel[]> {
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT id, node_id, round, status, reason, num_examples FROM model_updates
       WHERE run_id = $1 AND ($2::int IS NULL OR round = $2) ORDER BY round, received_at, id`,
      [runId, round ?? null],
    );
    return rows.map((r) => ({
      id: r.id as string,
      nodeId: r.node_id as string,
      round: r.round as number,
      status: r.status as UpdateStatus,
      reason: (r.reason as string | null) ?? null,
      numExamples: r.num_examples as number,
    }));
  }

  /** The global model a round starts from, as float32 little-endian bytes. */
  async roundModel(runId: string, round: number): Promise<Buffer> {
    return this.version(runId, round - 1);
  }

  /** The latest global model of a run, with the study that says how to read it. */
  async latestModel(runId: string): Promise<{ weights: Buffer; study: StudyEntity }> {
    const run = await this.requireRun(runId);
    const [row] = await this.db.query(
      `SELECT weights FROM model_versions WHERE run_id = $1 ORDER BY round DESC LIMIT 1`,
      [runId],
    );
    const study = await this.db.getRepository(StudyEntity).findOneByOrFail({ id: run.studyId });
    return { weights: row.weights as Buffer, study };
  }

  /** Receives one update; rejected ones are recorded with their reason, never silently dropped. */
  async submit(
    runId: string,
    round: number,
    manifestJws: string | undefined,
    body: Buffer,
  ): Promise<SubmissionResult> {
    const run = await this.requireRun(runId);
    let claimedNode = 'unknown';
    let manifest: Manifest | undefined;
    try {
      if (!manifestJws) throw new Rejection('missing X-Custodia-Manifest header');
      try {
        claimedNode = String(decodeJwt(manifestJws).nodeId ?? 'unknown').slice(0, 64);
      } catch {
        throw new Rejection('manifest is not a compact JWS');
      }
      manifest = await this.verifiedManifest(manifestJws, claimedNode);
      const study = await this.db.getRepository(StudyEntity).findOneByOrFail({ id: run.studyId });
      await this.checkUpdate(run, round, manifest, body, study);
      const grants = await this.trainingGrants(study.id, manifest.contributors, manifest.nodeId);
      return await this.accept(run.id, round, manifest, body, grants, study);
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      const id = randomUUID();
      await this.db.query(
        `INSERT INTO model_updates (id, run_id, round, node_id, status, reason, num_examples,
           update_sha256, received_at) VALUES ($1, $2, $3, $4, 'REJECTED', $5, $6, $7, now())`,
        [
          id,
          run.id,
          round,
          manifest?.nodeId ?? claimedNode,
          e.message,
          Number.isSafeInteger(manifest?.numExamples) ? manifest!.numExamples : 0,
          manifest?.updateSha256 ?? null,
        ],
      );
      return { id, status: UpdateStatus.REJECTED, reason: e.message };
    }
  }

  private async verifiedManifest(jws: string, nodeId: string): Promise<Manifest> {
    const node = isUuid(nodeId)
      ? await this.db.getRepository(TrainingNodeEntity).findOneBy({ id: nodeId })
      : null;
    if (!node || node.revokedAt) throw new Rejection('node is not registered');
    let payload: Uint8Array;
    try {
      const key = await importJWK({ ...node.publicKey }, 'ES256');
      ({ payload } = await compactVerify(jws, key, { algorithms: ['ES256'] }));
    } catch {
      throw new Rejection('manifest signature does not verify with the node key');
    }
    // decodeJwt above already parsed this payload as a JSON object.
    const m = JSON.parse(Buffer.from(payload).toString('utf8')) as Manifest;
    const ok =
      typeof m.runId === 'string' &&
      Number.isInteger(m.round) &&
      m.nodeId === node.id &&
      Number.isSafeInteger(m.numExamples) &&
      m.numExamples >= 1 &&
      Array.isArray(m.contributors) &&
      m.contributors.length >= 1 &&
      m.contributors.length <= MAX_CONTRIBUTORS &&
      m.contributors.every((c) => typeof c === 'string') &&
      typeof m.updateSha256 === 'string' &&
      SHA256.test(m.updateSha256);
    if (!ok) throw new Rejection('manifest is malformed');
    return m;
  }

  private async checkUpdate(
    run: TrainingRunModel,
    round: number,
    m: Manifest,
    body: Buffer,
    study: StudyEntity,
  ): Promise<void> {
    if (m.runId !== run.id || m.round !== round) {
      throw new Rejection('manifest names another run or round');
    }
    const [open] = await this.db.query(
      `SELECT 1 FROM training_rounds WHERE run_id = $1 AND round = $2 AND status = 'OPEN'`,
      [run.id, round],
    );
    if (run.status !== RunStatus.RUNNING || !open) throw new Rejection('round is not open');
    if (createHash('sha256').update(body).digest('hex') !== m.updateSha256) {
      throw new Rejection('body does not match its hash');
    }
    if (body.length !== 4 * parameterCount(study.model, study.features.length)) {
      throw new Rejection('update has the wrong shape for this model');
    }
    const values = new Float32Array(body.buffer, body.byteOffset, body.length / 4);
    if (!values.every(Number.isFinite)) throw new Rejection('update holds non-finite values');
    const [dup] = await this.db.query(
      `SELECT 1 FROM model_updates
       WHERE run_id = $1 AND round = $2 AND node_id = $3 AND status = 'ACCEPTED'`,
      [run.id, round, m.nodeId],
    );
    if (dup) throw new Rejection('duplicate: this node already has an accepted update this round');
  }

  /** The grant under which each contributor may be trained on; throws on the first without. */
  private async trainingGrants(
    studyId: string,
    contributors: string[],
    nodeId: string,
  ): Promise<string[]> {
    const grants = await this.pdp.trainingGrants(studyId, contributors, nodeId);
    // A reason is shown to researchers and nodes: it counts contributors, never names them.
    const missing = contributors.filter((c) => !grants.has(c)).length;
    if (missing) {
      throw new Rejection(
        `${missing} of ${contributors.length} contributors hold no active TRAIN consent for this study`,
      );
    }
    return contributors.map((c) => grants.get(c)!);
  }

  private async accept(
    runId: string,
    round: number,
    m: Manifest,
    body: Buffer,
    grantIds: string[],
    study: StudyEntity,
  ): Promise<SubmissionResult> {
    const id = randomUUID();
    try {
      await this.db.query(
        `INSERT INTO model_updates (id, run_id, round, node_id, status, num_examples,
           update_sha256, contributors, grant_ids, metrics, body, received_at)
         VALUES ($1, $2, $3, $4, 'ACCEPTED', $5, $6, $7, $8, $9, $10, now())`,
        [
          id,
          runId,
          round,
          m.nodeId,
          m.numExamples,
          m.updateSha256,
          m.contributors,
          grantIds,
          cleanMetrics(m.metrics),
          body,
        ],
      );
    } catch (e) {
      if ((e as { code?: string }).code !== '23505') throw e;
      throw new Rejection('duplicate: this node already has an accepted update this round');
    }
    const [{ n }] = await this.db.query(
      `SELECT count(*)::int AS n FROM model_updates
       WHERE run_id = $1 AND round = $2 AND status = 'ACCEPTED'`,
      [runId, round],
    );
    if (n >= study.minNodes) {
      // The update is accepted whatever happens next; a failed aggregation (say the ledger
      // is down) leaves the round open, and the deadline sweep tries again.
      await this.closeRound(runId, round).catch((e: Error) =>
        this.logger.warn({ runId, round, errorType: e.name }, 'aggregation deferred'),
      );
    }
    return { id, status: UpdateStatus.ACCEPTED, reason: null };
  }

  private closeRound(runId: string, round: number): Promise<void> {
    const key = `${runId}/${round}`;
    const running = this.closing.get(key);
    if (running) return running;
    const done = this.aggregate(runId, round).finally(() => this.closing.delete(key));
    this.closing.set(key, done);
    return done;
  }

  private async closeExpiredRounds(): Promise<void> {
    try {
      const due: { run_id: string; round: number }[] = await this.db.query(
        `SELECT run_id, round FROM training_rounds WHERE status = 'OPEN' AND deadline_at <= now()`,
      );
      for (const r of due) await this.closeRound(r.run_id, r.round);
    } catch (e) {
      this.logger.warn({ errorType: (e as Error).name }, 'deadline sweep failed');
    }
  }

  /** Re-checks consent, aggregates, records provenance, and moves the run on. */
  private async aggregate(runId: string, round: number): Promise<void> {
    const [row] = await this.db.query(
      `SELECT r.*, t.study_id, t.rounds, t.strategy_state FROM training_rounds r
       JOIN training_runs t ON t.id = r.run_id
       WHERE r.run_id = $1 AND r.round = $2 AND r.status = 'OPEN' AND t.status = 'RUNNING'`,
      [runId, round],
    );
    if (!row) return;
    const study = await this.db.getRepository(StudyEntity).findOneByOrFail({ id: row.study_id });
    const updates: Record<string, unknown>[] = await this.db.query(
      `SELECT id, node_id, num_examples, update_sha256, contributors, metrics, body
       FROM model_updates WHERE run_id = $1 AND round = $2 AND status = 'ACCEPTED'
       ORDER BY received_at, id`,
      [runId, round],
    );
    // Consent at aggregation time: an update whose contributor revoked since is dropped.
    const accepted: typeof updates = [];
    const grantsByUpdate = new Map<string, string[]>();
    // One query for every contributor of the round (a STUDY grant names the study, not a node).
    const grants = await this.pdp.trainingGrants(
      study.id,
      [...new Set(updates.flatMap((u) => u.contributors as string[]))],
      'coordinator',
    );
    for (const u of updates) {
      const contributors = u.contributors as string[];
      const missing = contributors.filter((c) => !grants.has(c)).length;
      if (missing) {
        await this.db.query(
          `UPDATE model_updates SET status = 'REJECTED', body = NULL, reason = $2 WHERE id = $1`,
          [
            u.id,
            `${missing} of ${contributors.length} contributors revoked TRAIN consent before aggregation`,
          ],
        );
      } else {
        accepted.push(u);
        grantsByUpdate.set(
          u.id as string,
          contributors.map((c) => grants.get(c)!),
        );
      }
    }
    const deadlinePassed = new Date(row.deadline_at as Date).getTime() <= Date.now();
    if (accepted.length < study.minNodes) {
      if (deadlinePassed) {
        await this.fail(
          runId,
          round,
          `round ${round} closed at its deadline with ${accepted.length} of the ${study.minNodes} updates needed`,
        );
      }
      return;
    }

    const global = new Float32Array(copyBuffer(await this.version(runId, round - 1)));
    const strategy = createStrategy(study.strategy, {
      ...(study.noiseMultiplier
        ? {
            privacy: {
              clipNorm: study.clipNorm!,
              noiseMultiplier: study.noiseMultiplier,
              denominator: study.minNodes,
              sampleRate: 1,
            },
          }
        : {}),
    });
    if (row.strategy_state) strategy.restore(parseStrategyState(row.strategy_state));
    const aggregator = strategy.begin(global, round);
    for (const u of accepted) {
      const body = u.body as Buffer;
      aggregator.fold(new Float32Array(copyBuffer(body)), u.num_examples as number);
    }
    const { model, metrics } = aggregator.finish();
    const contributors = accepted.flatMap((u) =>
      (u.contributors as string[]).map((c, i) => ({
        contributorId: c,
        grantId: grantsByUpdate.get(u.id as string)![i],
      })),
    );
    const record = roundRecord({
      runId,
      studyId: study.id,
      round,
      model,
      parentHash: row.parent_hash as string,
      updateHashes: accepted.map((u) => u.update_sha256 as string),
      contributors,
      privacy: metrics.privacy
        ? { epsilon: metrics.privacy.epsilon, delta: metrics.privacy.delta }
        : null,
    });
    const { txId } = await this.ledger.submit('training', 'RecordRound', [JSON.stringify(record)]);
    const last = round >= (row.rounds as number);
    await this.db.transaction(async (m) => {
      await this.storeVersion(m, runId, round, model, record.modelHash);
      await m.query(
        `UPDATE training_rounds SET status = 'CLOSED', closed_at = now(), model_hash = $3,
           metrics = $4, epsilon = $5, num_updates = $6, num_contributors = $7, ledger_tx_id = $8
         WHERE run_id = $1 AND round = $2`,
        [
          runId,
          round,
          record.modelHash,
          nodeMetrics(accepted),
          record.epsilon,
          accepted.length,
          record.numContributors,
          txId,
        ],
      );
      await m.query(`UPDATE model_updates SET body = NULL WHERE run_id = $1 AND round = $2`, [
        runId,
        round,
      ]);
      await m.query(
        `UPDATE training_runs SET model_hash = $2, provenance_tx_ids = provenance_tx_ids || $3,
           strategy_state = $4, current_round = $5, status = $6, updated_at = now()
         WHERE id = $1`,
        [
          runId,
          record.modelHash,
          [txId],
          serialiseStrategyState(strategy.state() as StrategyState),
          last ? round : round + 1,
          last ? 'COMPLETED' : 'RUNNING',
        ],
      );
      if (!last) await this.openRound(m, runId, round + 1, record.modelHash, study);
    });
    this.events.emit('round', { runId, round, status: 'CLOSED' });
    if (!last) {
      this.events.emit('open', {
        runId,
        round: round + 1,
        studyId: study.id,
        clientConfig: strategy.clientConfig(),
      });
    }
  }

  private async fail(runId: string, round: number, reason: string): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.query(
        `UPDATE training_rounds SET status = 'FAILED', closed_at = now(), failure = $3
         WHERE run_id = $1 AND round = $2`,
        [runId, round, reason],
      );
      await m.query(
        `UPDATE training_runs SET status = 'FAILED', failure = $2, updated_at = now() WHERE id = $1`,
        [runId, reason],
      );
      await m.query(`UPDATE model_updates SET body = NULL WHERE run_id = $1`, [runId]);
    });
    this.events.emit('round', { runId, round, status: 'FAILED' });
  }

  private async openRound(
    m: EntityManager,
    runId: string,
    round: number,
    parentHash: string,
    study: StudyEntity,
  ): Promise<void> {
    await m.query(
      `INSERT INTO training_rounds (run_id, round, status, opened_at, deadline_at, parent_hash)
       VALUES ($1, $2, 'OPEN', now(), now() + $3 * interval '1 millisecond', $4)`,
      [runId, round, study.roundDeadlineMs, parentHash],
    );
  }

  private async storeVersion(
    m: EntityManager,
    runId: string,
    round: number,
    weights: Float32Array,
    hash: string,
  ): Promise<void> {
    await m.query(
      `INSERT INTO model_versions (run_id, round, hash, weights, created_at) VALUES ($1, $2, $3, $4, now())`,
      [runId, round, hash, Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength)],
    );
  }

  private async version(runId: string, round: number): Promise<Buffer> {
    if (!isUuid(runId) || !Number.isInteger(round) || round < 0) {
      throw new NotFoundError('No such round of that training run.');
    }
    const [row] = await this.db.query(
      `SELECT weights FROM model_versions WHERE run_id = $1 AND round = $2`,
      [runId, round],
    );
    if (!row) throw new NotFoundError('No such round of that training run.');
    return row.weights as Buffer;
  }

  private async requireRun(runId: string): Promise<TrainingRunModel> {
    const run = await this.get(runId);
    if (!run) throw new NotFoundError('No training run with that id.');
    return run;
  }

  private async ownStudy(actor: Actor, studyId: string): Promise<StudyEntity> {
    const study = isUuid(studyId)
      ? await this.db.getRepository(StudyEntity).findOneBy({ id: studyId })
      : null;
    if (!study) throw new NotFoundError('No study with that id.');
    if (study.ownerId !== actor.id) {
      throw new ForbiddenError('Only the researcher who owns this study can run it.');
    }
    return study;
  }
}

function toRun(r: Record<string, unknown>): TrainingRunModel {
  return {
    id: r.id as string,
    studyId: r.study_id as string,
    status: r.status as RunStatus,
    rounds: r.rounds as number,
    currentRound: r.current_round as number,
    modelHash: (r.model_hash as string | null) ?? null,
    provenanceTxIds: (r.provenance_tx_ids as string[]) ?? [],
    failure: (r.failure as string | null) ?? null,
  };
}

/** A Buffer's bytes in an ArrayBuffer of their own (aligned for Float32Array views). */
function copyBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Only finite numbers in [0, ∞) survive from a node's self-reported metrics. */
function cleanMetrics(m: Manifest['metrics']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ['loss', 'accuracy', 'auc'] as const) {
    const v = m?.[k];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[k] = v;
  }
  return out;
}

/** The nodes' held-out metrics, averaged with weights by their example counts. */
function nodeMetrics(updates: Record<string, unknown>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ['loss', 'accuracy', 'auc'] as const) {
    let sum = 0;
    let weight = 0;
    for (const u of updates) {
      const v = (u.metrics as Record<string, number> | null)?.[k];
      if (typeof v === 'number') {
        sum += v * (u.num_examples as number);
        weight += u.num_examples as number;
      }
    }
    if (weight > 0) out[k] = sum / weight;
  }
  return out;
}
