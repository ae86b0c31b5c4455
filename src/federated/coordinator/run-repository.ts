// Every statement the coordinator runs against its tables (training_runs, training_rounds,
// model_updates, model_versions), with typed rows. Methods that take part in a transaction
// accept its EntityManager; the others run on the pool.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { isUuid } from '../../common/ids';
import type { RoundRecord } from '../provenance';
import type { StoredStrategyState } from './strategy-state';
import { TrainingNodeEntity } from '../studies/study.entity';
import {
  ModelUpdateInfoModel,
  RoundMetricsModel,
  RunStatus,
  TrainingRunModel,
  UpdateStatus,
} from './run.model';

type Queryable = DataSource | EntityManager;

export type RoundStatus = 'OPEN' | 'CLOSING' | 'CLOSED' | 'FAILED';

/** Node-reported held-out metrics (finite, non-negative). */
export type NodeMetrics = { loss?: number; accuracy?: number; auc?: number };

/** A round with what its run says about it. */
export interface RoundRow {
  runId: string;
  round: number;
  status: RoundStatus;
  studyId: string;
  runStatus: RunStatus;
  rounds: number;
  deadlineAt: Date;
  parentHash: string;
  /** The run's strategy state before this round (FedAdam's moments, privacy spent). */
  runStrategyState: StoredStrategyState | null;
  /** Set while CLOSING: what goes on the ledger, and the state after this round. */
  pending: { record: RoundRecord; strategyState: StoredStrategyState } | null;
}

/** An accepted update, with its body, as the round closer folds it. */
export interface AcceptedUpdate {
  id: string;
  nodeId: string;
  numExamples: number;
  updateSha256: string;
  contributors: string[];
  /** The grant each contributor was accepted under, as the intake found it (same order). */
  grantIds: string[];
  metrics: NodeMetrics | null;
  body: Buffer;
}

export interface OpenRoundRow {
  runId: string;
  round: number;
  studyId: string;
  deadlineAt: Date;
  submitted: boolean;
}

export interface NewUpdate {
  id: string;
  runId: string;
  round: number;
  nodeId: string;
  status: UpdateStatus;
  reason: string | null;
  numExamples: number;
  updateSha256: string | null;
  contributors?: string[];
  grantIds?: string[];
  metrics?: NodeMetrics;
  body?: Buffer;
}

/** What a closed round stores beside its model. */
export interface RoundOutcome {
  record: RoundRecord;
  strategyState: StoredStrategyState;
  metrics: NodeMetrics;
  numUpdates: number;
}

@Injectable()
export class RunRepository {
  constructor(@InjectDataSource() readonly db: DataSource) {}

  transaction<T>(work: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  // --- runs ---

  async insertRun(
    m: EntityManager,
    run: { id: string; studyId: string; rounds: number; modelHash: string; startedBy: string },
  ): Promise<void> {
    await m.query(
      `INSERT INTO training_runs (id, study_id, status, rounds, current_round, model_hash,
         started_by, created_at, updated_at) VALUES ($1, $2, 'RUNNING', $3, 1, $4, $5, now(), now())`,
      [run.id, run.studyId, run.rounds, run.modelHash, run.startedBy],
    );
  }

  async run(id: string, q: Queryable = this.db): Promise<TrainingRunModel | null> {
    if (!isUuid(id)) return null;
    const [row] = (await q.query(`SELECT * FROM training_runs WHERE id = $1`, [id])) as RunDbRow[];
    return row ? toRun(row) : null;
  }

  /** Each study's runs, newest first, in the studies' order: one query for them all. */
  async runsOfStudies(studyIds: readonly string[]): Promise<TrainingRunModel[][]> {
    const rows = (await this.db.query(
      `SELECT * FROM training_runs WHERE study_id = ANY($1::uuid[]) ORDER BY created_at DESC, id`,
      [studyIds.filter(isUuid)],
    )) as RunDbRow[];
    return groupBy(studyIds, rows.map(toRun), (r) => r.studyId);
  }

  /** Cancels a running run: its open rounds fail, and update bodies are dropped. */
  async cancelRun(m: EntityManager, runId: string): Promise<void> {
    await m.query(
      `UPDATE training_runs SET status = 'CANCELLED', updated_at = now() WHERE id = $1`,
      [runId],
    );
    await m.query(
      `UPDATE training_rounds SET status = 'FAILED', closed_at = now(), failure = 'cancelled'
       WHERE run_id = $1 AND status = 'OPEN'`,
      [runId],
    );
    await this.dropBodies(m, runId);
  }

  // --- rounds ---

  async openRound(
    m: EntityManager,
    runId: string,
    round: number,
    parentHash: string,
    deadlineMs: number,
  ): Promise<void> {
    await m.query(
      `INSERT INTO training_rounds (run_id, round, status, opened_at, deadline_at, parent_hash)
       VALUES ($1, $2, 'OPEN', now(), now() + $3 * interval '1 millisecond', $4)`,
      [runId, round, deadlineMs, parentHash],
    );
  }

  async round(runId: string, round: number): Promise<RoundRow | null> {
    const [r] = (await this.db.query(
      `SELECT r.run_id, r.round, r.status, r.deadline_at, r.parent_hash, r.round_record,
              r.strategy_state AS pending_state, t.study_id, t.status AS run_status, t.rounds,
              t.strategy_state AS run_state
       FROM training_rounds r JOIN training_runs t ON t.id = r.run_id
       WHERE r.run_id = $1 AND r.round = $2`,
      [runId, round],
    )) as {
      run_id: string;
      round: number;
      status: RoundStatus;
      deadline_at: Date;
      parent_hash: string;
      round_record: RoundRecord | null;
      pending_state: StoredStrategyState | null;
      study_id: string;
      run_status: RunStatus;
      rounds: number;
      run_state: StoredStrategyState | null;
    }[];
    if (!r) return null;
    return {
      runId: r.run_id,
      round: r.round,
      status: r.status,
      studyId: r.study_id,
      runStatus: r.run_status,
      rounds: r.rounds,
      deadlineAt: new Date(r.deadline_at),
      parentHash: r.parent_hash.trim(),
      runStrategyState: r.run_state,
      pending:
        r.round_record && r.pending_state !== null
          ? { record: r.round_record, strategyState: r.pending_state }
          : null,
    };
  }

  /**
   * What taking in one update reads: the run, whether the round is open and whether the node
   * its manifest names already has an accepted update in it (one query), and that node's row,
   * revocation and all (read at the same time). Null when there is no such run.
   */
  async intakeContext(runId: string, round: number, nodeId: string): Promise<IntakeContext | null> {
    if (!isUuid(runId)) return null;
    const [[row], node] = await Promise.all([
      this.db.query(
        `SELECT t.*, r.status = 'OPEN' AS round_open,
                EXISTS (SELECT 1 FROM model_updates u WHERE u.run_id = t.id AND u.round = $2
                          AND u.node_id = $3 AND u.status = 'ACCEPTED') AS node_accepted
         FROM training_runs t
         LEFT JOIN training_rounds r ON r.run_id = t.id AND r.round = $2
         WHERE t.id = $1`,
        [runId, round, nodeId],
      ) as Promise<(RunDbRow & { round_open: boolean | null; node_accepted: boolean })[]>,
      isUuid(nodeId) ? this.db.getRepository(TrainingNodeEntity).findOneBy({ id: nodeId }) : null,
    ]);
    if (!row) return null;
    return {
      run: toRun(row),
      node,
      roundExists: row.round_open !== null,
      open: row.round_open === true,
      accepted: row.node_accepted,
    };
  }

  /** Whether `nodeId` names a registered training node that is not revoked. */
  async liveNode(nodeId: string): Promise<boolean> {
    if (!isUuid(nodeId)) return false;
    const node = await this.db.getRepository(TrainingNodeEntity).findOneBy({ id: nodeId });
    return node !== null && !node.revokedAt;
  }

  /** Rounds open now, with whether `nodeId` has already sent its update. */
  async openRounds(nodeId: string): Promise<OpenRoundRow[]> {
    const rows = (await this.db.query(
      `SELECT r.run_id, r.round, t.study_id, r.deadline_at,
              EXISTS (SELECT 1 FROM model_updates u WHERE u.run_id = r.run_id
                        AND u.round = r.round AND u.node_id = $1
                        AND u.status = 'ACCEPTED') AS submitted
       FROM training_rounds r JOIN training_runs t ON t.id = r.run_id
       JOIN studies s ON s.id = t.study_id
       WHERE r.status = 'OPEN' AND t.status = 'RUNNING'
       ORDER BY r.opened_at`,
      [nodeId],
    )) as {
      run_id: string;
      round: number;
      study_id: string;
      deadline_at: Date;
      submitted: boolean;
    }[];
    return rows.map((r) => ({
      runId: r.run_id,
      round: r.round,
      studyId: r.study_id,
      deadlineAt: r.deadline_at,
      submitted: r.submitted,
    }));
  }

  /**
   * Rounds the closer should look at: those being closed (CLOSING), those past their
   * deadline, and open ones whose quorum is met (an aggregation that failed is retried).
   */
  async roundsToClose(): Promise<{ runId: string; round: number }[]> {
    const rows = (await this.db.query(
      `SELECT r.run_id, r.round FROM training_rounds r
       JOIN training_runs t ON t.id = r.run_id JOIN studies s ON s.id = t.study_id
       WHERE r.status = 'CLOSING'
          OR (r.status = 'OPEN' AND t.status = 'RUNNING' AND (r.deadline_at <= now()
              OR (SELECT count(*) FROM model_updates u WHERE u.run_id = r.run_id
                    AND u.round = r.round AND u.status = 'ACCEPTED') >= s.min_nodes))
       ORDER BY r.opened_at`,
    )) as { run_id: string; round: number }[];
    return rows.map((r) => ({ runId: r.run_id, round: r.round }));
  }

  /**
   * Step 1 of closing: the new model and the round's outcome are stored, and the round moves
   * from OPEN to CLOSING, in one statement (so atomically, in a transaction of its own or in
   * the caller's). False when the round was no longer open.
   */
  async markClosing(
    q: Queryable,
    runId: string,
    round: number,
    model: Float32Array,
    outcome: RoundOutcome,
  ): Promise<boolean> {
    const rows = (await q.query(
      `WITH closing AS (
         UPDATE training_rounds SET status = 'CLOSING', model_hash = $3, metrics = $4,
           epsilon = $5, num_updates = $6, num_contributors = $7, round_record = $8,
           strategy_state = $9
         WHERE run_id = $1 AND round = $2 AND status = 'OPEN'
         RETURNING run_id, round)
       INSERT INTO model_versions (run_id, round, hash, weights, created_at)
       SELECT run_id, round, $3, $10, now() FROM closing
       RETURNING round`,
      [
        runId,
        round,
        outcome.record.modelHash,
        outcome.metrics,
        outcome.record.epsilon,
        outcome.numUpdates,
        outcome.record.numContributors,
        JSON.stringify(outcome.record),
        outcome.strategyState,
        Buffer.from(model.buffer, model.byteOffset, model.byteLength),
      ],
    )) as unknown[];
    return rows.length === 1;
  }

  /**
   * Step 3 of closing, once the ledger holds the round: CLOSED with its transaction, the
   * round's update bodies dropped, the run moved on (if it still runs), and the next round
   * opened — in one statement. Whether the round was CLOSING (and so is closed now), and
   * whether a next round was opened.
   */
  async markClosed(
    q: Queryable,
    row: RoundRow,
    txId: string,
    next: { deadlineMs: number } | null,
  ): Promise<{ closed: boolean; opened: boolean }> {
    const { runId, round, pending } = row;
    if (!pending) return { closed: false, opened: false };
    const [result] = (await q.query(
      `WITH closed AS (
         UPDATE training_rounds SET status = 'CLOSED', closed_at = now(), ledger_tx_id = $3,
           round_record = NULL, strategy_state = NULL
         WHERE run_id = $1 AND round = $2 AND status = 'CLOSING'
         RETURNING run_id),
       bodies AS (
         UPDATE model_updates SET body = NULL
         WHERE run_id = $1 AND round = $2 AND EXISTS (SELECT 1 FROM closed)),
       moved AS (
         UPDATE training_runs SET model_hash = $4::text, provenance_tx_ids = provenance_tx_ids || $5::text[],
           strategy_state = $6, current_round = $7, status = $8, updated_at = now()
         WHERE id = $1 AND status = 'RUNNING' AND EXISTS (SELECT 1 FROM closed)
         RETURNING id),
       opened AS (
         INSERT INTO training_rounds (run_id, round, status, opened_at, deadline_at, parent_hash)
         SELECT id, $2 + 1, 'OPEN', now(), now() + $9::float8 * interval '1 millisecond', $4::text
         FROM moved WHERE $10::boolean
         RETURNING round)
       SELECT (SELECT count(*) FROM closed)::int AS closed,
              (SELECT count(*) FROM opened)::int AS opened`,
      [
        runId,
        round,
        txId,
        pending.record.modelHash,
        [txId],
        pending.strategyState,
        next ? round + 1 : round,
        next ? 'RUNNING' : 'COMPLETED',
        next?.deadlineMs ?? 0,
        next !== null,
      ],
    )) as { closed: number; opened: number }[];
    return { closed: result.closed === 1, opened: result.opened === 1 };
  }

  /** A round (and its run) failed: nothing more is trained, and update bodies are dropped. */
  async failRound(runId: string, round: number, reason: string, q?: EntityManager): Promise<void> {
    const fail = async (m: EntityManager) => {
      await m.query(
        `UPDATE training_rounds SET status = 'FAILED', closed_at = now(), failure = $3,
           round_record = NULL, strategy_state = NULL
         WHERE run_id = $1 AND round = $2`,
        [runId, round, reason],
      );
      await m.query(
        `UPDATE training_runs SET status = 'FAILED', failure = $2, updated_at = now()
         WHERE id = $1`,
        [runId, reason],
      );
      await this.dropBodies(m, runId);
    };
    await (q ? fail(q) : this.db.transaction(fail));
  }

  /** Each run's closed rounds' metrics, in the runs' order: one query for them all. */
  async metricsOfRuns(runIds: readonly string[]): Promise<RoundMetricsModel[][]> {
    const rows = (await this.db.query(
      `SELECT run_id, round, metrics, epsilon, num_updates, num_contributors FROM training_rounds
       WHERE run_id = ANY($1::uuid[]) AND status = 'CLOSED' ORDER BY round`,
      [runIds.filter(isUuid)],
    )) as {
      run_id: string;
      round: number;
      metrics: NodeMetrics | null;
      epsilon: number | null;
      num_updates: number | null;
      num_contributors: number | null;
    }[];
    const metrics = rows.map((r) => ({
      runId: r.run_id,
      round: r.round,
      loss: r.metrics?.loss ?? null,
      accuracy: r.metrics?.accuracy ?? null,
      auc: r.metrics?.auc ?? null,
      numContributors: r.num_contributors ?? 0,
      numUpdates: r.num_updates ?? 0,
      epsilon: r.epsilon ?? null,
    }));
    return groupBy(runIds, metrics, (m) => m.runId).map((ms) =>
      ms.map(({ runId: _run, ...m }) => m),
    );
  }

  // --- updates ---

  /** Stores a rejected update (a rejection is recorded whatever the round's state). */
  async insertRejected(u: NewUpdate): Promise<void> {
    await this.db.query(INSERT_UPDATE, updateValues(u));
  }

  /**
   * Stores an accepted update, unless its round is no longer open ('closed'), its node has one
   * accepted already ('duplicate'), or some of its contributors are already counted in the
   * round by another node's accepted update (their number):
   * a patient weighs once in a round, whichever nodes of their organisation send them. The
   * round's row is locked first, so accepted updates of one round are stored one at a time
   * and each sees the others' contributors; a round's closing waits for it (lockOpenRound),
   * and an accepted update is always one the round folds.
   */
  async insertAccepted(u: NewUpdate): Promise<'stored' | 'closed' | 'duplicate' | number> {
    return this.db.transaction(async (m) => {
      if (!(await this.lockOpenRound(m, u.runId, u.round))) return 'closed';
      const [{ mine, counted }] = (await m.query(
        `SELECT bool_or(mu.node_id = $4) AS mine,
           count(DISTINCT c) FILTER (WHERE c = ANY($3::text[]))::int AS counted
         FROM model_updates mu LEFT JOIN LATERAL unnest(mu.contributors) AS c ON true
         WHERE mu.run_id = $1 AND mu.round = $2 AND mu.status = 'ACCEPTED'`,
        [u.runId, u.round, u.contributors ?? [], u.nodeId],
      )) as { mine: boolean | null; counted: number }[];
      if (mine) return 'duplicate';
      if (counted > 0) return counted;
      await m.query(INSERT_UPDATE, updateValues(u));
      return 'stored';
    });
  }

  /** The nodes that already sent an update for this round (accepted or not). */
  /**
   * How many of `patientIds` are patients held here of another organisation than
   * `organizationId` (patients this database does not hold are not counted: their
   * organisation is not known here).
   */
  async patientsOfOtherOrganizations(
    patientIds: readonly string[],
    organizationId: string,
  ): Promise<number> {
    const ids = patientIds.filter(isUuid);
    if (!ids.length) return 0;
    const [row] = (await this.db.query(
      `SELECT count(*)::int AS n FROM patients
       WHERE id = ANY($1::uuid[]) AND organization_id IS DISTINCT FROM $2`,
      [ids, organizationId],
    )) as { n: number }[];
    return row.n;
  }

  /** The nodes with an accepted update in the round (a rejected one may send again). */
  async submittedNodes(runId: string, round: number): Promise<Set<string>> {
    const rows = (await this.db.query(
      `SELECT DISTINCT node_id FROM model_updates
       WHERE run_id = $1 AND round = $2 AND status = 'ACCEPTED'`,
      [runId, round],
    )) as { node_id: string }[];
    return new Set(rows.map((r) => r.node_id));
  }

  async acceptedCount(runId: string, round: number): Promise<number> {
    const [{ n }] = (await this.db.query(
      `SELECT count(*)::int AS n FROM model_updates
       WHERE run_id = $1 AND round = $2 AND status = 'ACCEPTED'`,
      [runId, round],
    )) as { n: number }[];
    return n;
  }

  /**
   * Locks an open round's row until `m`'s transaction ends, for closing it: an accepted update
   * being stored for the round meanwhile waits, and is then refused (insertUpdate), so that the
   * updates read under the lock are all the round will fold. False if the round is not open.
   */
  async lockOpenRound(m: EntityManager, runId: string, round: number): Promise<boolean> {
    const rows = (await m.query(
      `SELECT 1 FROM training_rounds WHERE run_id = $1 AND round = $2 AND status = 'OPEN'
       FOR UPDATE`,
      [runId, round],
    )) as unknown[];
    return rows.length === 1;
  }

  async acceptedUpdates(
    runId: string,
    round: number,
    q: Queryable = this.db,
  ): Promise<AcceptedUpdate[]> {
    const rows = (await q.query(
      `SELECT id, node_id, num_examples, update_sha256, contributors, grant_ids, metrics, body
       FROM model_updates WHERE run_id = $1 AND round = $2 AND status = 'ACCEPTED'
       ORDER BY received_at, id`,
      [runId, round],
    )) as {
      id: string;
      node_id: string;
      num_examples: number;
      update_sha256: string;
      contributors: string[];
      grant_ids: string[] | null;
      metrics: NodeMetrics | null;
      body: Buffer | null;
    }[];
    return rows
      .filter((r) => r.body !== null)
      .map((r) => ({
        id: r.id,
        nodeId: r.node_id,
        numExamples: r.num_examples,
        updateSha256: r.update_sha256,
        contributors: r.contributors,
        grantIds: r.grant_ids ?? [],
        metrics: r.metrics,
        body: r.body!,
      }));
  }

  async rejectUpdate(m: EntityManager, id: string, reason: string): Promise<void> {
    await m.query(
      `UPDATE model_updates SET status = 'REJECTED', body = NULL, reason = $2 WHERE id = $1`,
      [id, reason],
    );
  }

  /** A run's updates (of one round, and of one node, when given). */
  /** Each run's updates (of one round and one node when given), in the runs' order: one query. */
  async updateInfosOfRuns(
    runIds: readonly string[],
    round?: number | null,
    nodeId?: string,
  ): Promise<ModelUpdateInfoModel[][]> {
    const rows = (await this.db.query(
      `SELECT run_id, id, node_id, round, status, reason, num_examples FROM model_updates
       WHERE run_id = ANY($1::uuid[]) AND ($2::int IS NULL OR round = $2)
         AND ($3::text IS NULL OR node_id = $3)
       ORDER BY round, received_at, id`,
      [runIds.filter(isUuid), round ?? null, nodeId ?? null],
    )) as {
      run_id: string;
      id: string;
      node_id: string;
      round: number;
      status: UpdateStatus;
      reason: string | null;
      num_examples: number;
    }[];
    const infos = rows.map((r) => ({
      runId: r.run_id,
      id: r.id,
      nodeId: r.node_id,
      round: r.round,
      status: r.status,
      reason: r.reason ?? null,
      numExamples: r.num_examples,
    }));
    return groupBy(runIds, infos, (u) => u.runId).map((us) => us.map(({ runId: _run, ...u }) => u));
  }

  private async dropBodies(m: EntityManager, runId: string): Promise<void> {
    await m.query(`UPDATE model_updates SET body = NULL WHERE run_id = $1`, [runId]);
  }

  // --- model versions ---

  async storeVersion(
    m: EntityManager,
    runId: string,
    round: number,
    weights: Float32Array,
    hash: string,
  ): Promise<void> {
    await m.query(
      `INSERT INTO model_versions (run_id, round, hash, weights, created_at)
       VALUES ($1, $2, $3, $4, now())`,
      [runId, round, hash, Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength)],
    );
  }

  /** The global model after `round` (0: the initial one), or null. */
  async version(runId: string, round: number): Promise<Buffer | null> {
    if (!isUuid(runId) || !Number.isInteger(round) || round < 0) return null;
    const [row] = (await this.db.query(
      `SELECT weights FROM model_versions WHERE run_id = $1 AND round = $2`,
      [runId, round],
    )) as { weights: Buffer }[];
    return row?.weights ?? null;
  }

  /**
   * The latest global model of a run that the ledger holds (a CLOSING round's model is not
   * final until its round is recorded).
   */
  /** The model a round starts from: null unless that round has opened. */
  async roundStartVersion(runId: string, round: number): Promise<Buffer | null> {
    if (!isUuid(runId) || !Number.isInteger(round) || round < 1) return null;
    const [row] = (await this.db.query(
      `SELECT v.weights FROM model_versions v
       JOIN training_rounds r ON r.run_id = v.run_id AND r.round = $2
       WHERE v.run_id = $1 AND v.round = $2 - 1`,
      [runId, round],
    )) as { weights: Buffer }[];
    return row?.weights ?? null;
  }

  /** The latest global model: of the last closed round, or the initial one (round 0). */
  async latestVersion(runId: string): Promise<{ round: number; weights: Buffer } | null> {
    const [row] = (await this.db.query(
      `SELECT v.round, v.weights FROM model_versions v
       LEFT JOIN training_rounds r ON r.run_id = v.run_id AND r.round = v.round
       WHERE v.run_id = $1 AND (v.round = 0 OR r.status = 'CLOSED')
       ORDER BY v.round DESC LIMIT 1`,
      [runId],
    )) as { round: number; weights: Buffer }[];
    return row ?? null;
  }
}

/** A run, as an update arrives for one of its rounds (RunRepository.intakeContext). */
export interface IntakeContext {
  run: TrainingRunModel;
  /** The node sending the update (or, for an in-process caller, the one its manifest names), if registered (revoked or not). */
  node: TrainingNodeEntity | null;
  /** Whether the round has opened (it may have ended since). */
  roundExists: boolean;
  /** Whether the round exists and is open. */
  open: boolean;
  /** Whether that node already has an accepted update in the round. */
  accepted: boolean;
}

interface RunDbRow {
  id: string;
  study_id: string;
  status: RunStatus;
  rounds: number;
  current_round: number;
  model_hash: string | null;
  provenance_tx_ids: string[] | null;
  failure: string | null;
}

function toRun(r: RunDbRow): TrainingRunModel {
  return {
    id: r.id,
    studyId: r.study_id,
    status: r.status,
    rounds: r.rounds,
    currentRound: r.current_round,
    modelHash: r.model_hash ?? null,
    provenanceTxIds: r.provenance_tx_ids ?? [],
    failure: r.failure ?? null,
  };
}

/** `items` grouped under each of `keys` (in the keys' order), keeping the items' order. */
function groupBy<T>(keys: readonly string[], items: readonly T[], keyOf: (t: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return keys.map((k) => groups.get(k) ?? []);
}

const INSERT_UPDATE = `INSERT INTO model_updates (id, run_id, round, node_id, status, reason,
    num_examples, update_sha256, contributors, grant_ids, metrics, body, received_at)
  VALUES ($1::uuid, $2::uuid, $3::int, $4::text, $5::text, $6::text, $7::int, $8::text,
    $9::text[], $10::text[], $11::jsonb, $12::bytea, now())`;

function updateValues(u: NewUpdate): unknown[] {
  return [
    u.id,
    u.runId,
    u.round,
    u.nodeId,
    u.status,
    u.reason,
    u.numExamples,
    u.updateSha256,
    u.contributors ?? [],
    u.grantIds ?? [],
    u.metrics ?? null,
    u.body ?? null,
  ];
}
