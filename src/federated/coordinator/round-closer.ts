// The round closer: re-checks consent, aggregates with the study's strategy (and privacy
// step), records provenance on the ledger, and moves the run on — crash-safe, the way record
// anchoring is:
//   1. OPEN → CLOSING: the new model, the round's outcome, its ledger record and the
//      strategy's next state are stored in one statement (one transaction);
//   2. the record goes on the ledger; if the ledger already holds the round (an earlier try
//      committed, then the answer or the process was lost) with the same model hash, that
//      transaction is adopted;
//   3. CLOSING → CLOSED: the run advances and the next round opens, in one statement.
// A failure at any step leaves a state the next attempt resumes from (the sweep retries each
// round on its own, with backoff), and the ledger holds each round once.
import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { PolicyDecisionPoint } from '../../consent';
import { Ledger, LEDGER } from '../../ledger';
import { studyPrivacy } from '../privacy';
import { roundRecord, RoundRecord } from '../provenance';
import { createStrategy, releaseModel } from '../strategies';
import { StudiesService } from '../studies/studies.service';
import type { StudyEntity } from '../studies/study.entity';
import { CoordinatorEvents, RoundOpened, roundOpened } from './coordinator-events';
import {
  AcceptedUpdate,
  NodeMetrics,
  RoundOutcome,
  RoundRow,
  RunRepository,
} from './run-repository';
import { RunStatus } from './run.model';
import { parseStrategyState, serialiseStrategyState } from './strategy-state';

const SWEEP_MS = 1_000;
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;

@Injectable()
export class RoundCloser implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RoundCloser.name);
  /** Rounds being closed, so two closers in this process never race. */
  private readonly closing = new Map<string, Promise<void>>();
  /** Rounds whose last attempt failed: when to try again. */
  private readonly retries = new Map<string, { failures: number; at: number }>();
  private sweeper?: NodeJS.Timeout;
  private sweeping = false;
  private sweepFailing = false;

  constructor(
    private readonly repo: RunRepository,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly pdp: PolicyDecisionPoint,
    private readonly events: CoordinatorEvents,
    private readonly studies: StudiesService,
  ) {}

  onApplicationBootstrap(): void {
    // Work is found in the database, so rounds left CLOSING or due by a restart finish too.
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopSweeping();
    await Promise.allSettled(this.closing.values());
  }

  /** No more sweeps in this process (rounds then close only on quorum, or after a restart). */
  stopSweeping(): void {
    clearInterval(this.sweeper);
  }

  /** Closes the round if it is due (quorum met, or deadline passed); one closer per round. */
  close(runId: string, round: number): Promise<void> {
    const key = `${runId}/${round}`;
    const running = this.closing.get(key);
    if (running) return running;
    const done = this.closeOnce(runId, round).then(
      () => void this.retries.delete(key),
      (e: unknown) => {
        const failures = (this.retries.get(key)?.failures ?? 0) + 1;
        const wait = Math.min(RETRY_FIRST_MS * 2 ** (failures - 1), RETRY_MAX_MS);
        this.retries.set(key, { failures, at: Date.now() + wait });
        throw e;
      },
    );
    const tracked = done.finally(() => this.closing.delete(key));
    this.closing.set(key, tracked);
    return tracked;
  }

  /** One pass over the rounds due; each is tried on its own, so one failure stops no other. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const due = await this.repo.roundsToClose();
      const keys = new Set(due.map((r) => `${r.runId}/${r.round}`));
      for (const key of this.retries.keys()) if (!keys.has(key)) this.retries.delete(key);
      for (const { runId, round } of due) {
        const retry = this.retries.get(`${runId}/${round}`);
        if (retry && retry.at > Date.now()) continue;
        await this.close(runId, round).catch((e: Error) =>
          this.logger.warn({ runId, round, errorType: e.name }, 'round not closed; will retry'),
        );
      }
      if (this.sweepFailing) this.logger.log('round sweep works again');
      this.sweepFailing = false;
    } catch (e) {
      // Once per outage (the database restarting, say), not once a second.
      if (!this.sweepFailing) {
        this.logger.warn({ errorType: (e as Error).name }, 'round sweep failed; retrying');
      }
      this.sweepFailing = true;
    } finally {
      this.sweeping = false;
    }
  }

  private async closeOnce(runId: string, round: number): Promise<void> {
    let row = await this.repo.round(runId, round);
    if (row?.status === 'OPEN') {
      if (row.runStatus !== RunStatus.RUNNING) return;
      const pending = await this.prepare(row);
      if (!pending) return;
      row = { ...row, status: 'CLOSING', pending };
    }
    if (row?.status !== 'CLOSING' || !row.pending) return;
    const study = await this.study(row.studyId);
    const txId = await this.recordOnLedger(row);
    if (txId === null) return;
    const last = round >= row.rounds;
    const closing = row;
    const { closed, opened } = await this.repo.markClosed(
      this.repo.db,
      closing,
      txId,
      last ? null : { deadlineMs: study.roundDeadlineMs },
    );
    if (!closed) return;
    this.events.emit('round', { runId, round, status: 'CLOSED' });
    if (opened) {
      this.events.emit('open', roundOpened(runId, round + 1, study));
    }
  }

  /**
   * Step 1: consent at aggregation time (an update whose contributors revoked since is
   * rejected), then aggregation and the move to CLOSING. What was stored for step 2, or null
   * when the round cannot close yet (short of its quorum before the deadline), failed (short
   * of it after), or was no longer open.
   */
  private async prepare(row: RoundRow): Promise<RoundRow['pending']> {
    // The model the updates start from, read before it is known to be needed (a round short
    // of its quorum drops it), beside the transaction.
    const parentRead = this.repo.version(row.runId, row.round - 1);
    parentRead.catch(() => undefined); // awaited below, or dropped with the round
    const { pending, failed, reopen } = await this.repo.transaction((m) =>
      this.prepareIn(m, row, parentRead),
    );
    if (failed) this.events.emit('round', { runId: row.runId, round: row.round, status: 'FAILED' });
    if (reopen) this.events.emit('reopen', reopen);
    return pending;
  }

  /**
   * prepare's work, in one transaction that holds the round's row from the start: an update
   * stored for the round meanwhile waits, and is then refused as the round is no longer open
   * (RunRepository.insertUpdate), so no update is left accepted but unfolded.
   */
  private async prepareIn(
    m: EntityManager,
    row: RoundRow,
    parentRead: Promise<Buffer | null>,
  ): Promise<{ pending: RoundRow['pending']; failed: boolean; reopen?: RoundOpened }> {
    const [study, open] = await Promise.all([
      this.study(row.studyId),
      this.repo.lockOpenRound(m, row.runId, row.round),
    ]);
    if (!open) return { pending: null, failed: false };
    const updates = await this.repo.acceptedUpdates(row.runId, row.round, m);
    // One query for every contributor of the round (a STUDY grant names the study, not a node).
    const scopes = await this.pdp.trainingScopes(
      study.id,
      [...new Set(updates.flatMap((u) => u.contributors))],
      'coordinator',
    );
    // Each contributor still under the grant the update was taken under: one revoked since
    // (say for a narrower one) ended the consent its records were read by, even if another
    // grant now stands.
    const consenting = (u: AcceptedUpdate, c: string, i: number) => {
      const standing = scopes.get(c);
      const cited = u.grantIds[i];
      return !!standing && (cited === undefined || standing.some((g) => g.id === cited));
    };
    const accepted: AcceptedUpdate[] = [];
    const revoked: { id: string; reason: string }[] = [];
    for (const u of updates) {
      const missing = u.contributors.filter((c, i) => !consenting(u, c, i)).length;
      if (missing === 0) accepted.push(u);
      else {
        revoked.push({
          id: u.id,
          reason: `${missing} of ${u.contributors.length} contributors' TRAIN consent ended (revoked or expired) before aggregation`,
        });
      }
    }
    for (const r of revoked) await this.repo.rejectUpdate(m, r.id, r.reason);
    if (accepted.length < study.minNodes) {
      if (row.deadlineAt.getTime() > Date.now()) {
        // Nodes whose updates were just rejected may train again, without those patients.
        const reopen = revoked.length ? roundOpened(row.runId, row.round, study) : undefined;
        return { pending: null, failed: false, reopen };
      }
      const reason = `round ${row.round} closed at its deadline with ${accepted.length} of the ${study.minNodes} updates needed`;
      await this.repo.failRound(row.runId, row.round, reason, m);
      return { pending: null, failed: true };
    }
    const parent = await parentRead;
    if (!parent) throw new Error(`the model before round ${row.round} is missing`);
    let built: { model: Float32Array; outcome: RoundOutcome };
    try {
      // The provenance names, per contributor, the first grant (by id) that lets them be trained on.
      const grants = new Map([...scopes].map(([patient, standing]) => [patient, standing[0].id]));
      built = this.aggregate(study, row, parent, accepted, grants);
    } catch (e) {
      // The same updates would fail the same way at every try: the round fails, saying why,
      // instead of being retried until someone cancels the run.
      if (!(e instanceof RangeError)) throw e;
      const reason = `round ${row.round} could not be aggregated: ${e.message}`;
      await this.repo.failRound(row.runId, row.round, reason, m);
      return { pending: null, failed: true };
    }
    const { model, outcome } = built;
    const { record, strategyState } = outcome;
    const stored = await this.repo.markClosing(m, row.runId, row.round, model, outcome);
    // Stored (and hashed into the record): its memory serves the next round's sums.
    releaseModel(model);
    return { pending: stored ? { record, strategyState } : null, failed: false };
  }

  /** The round's new model and what is stored with it: pure, and deterministic. */
  private aggregate(
    study: StudyEntity,
    row: RoundRow,
    parent: Buffer,
    accepted: AcceptedUpdate[],
    grants: ReadonlyMap<string, string>,
  ): { model: Float32Array; outcome: RoundOutcome } {
    const strategy = createStrategy(study.strategy, { privacy: studyPrivacy(study) });
    if (row.runStrategyState) strategy.restore(parseStrategyState(row.runStrategyState));
    const aggregator = strategy.begin(floats(parent), row.round);
    for (const u of accepted) aggregator.fold(floats(u.body), u.numExamples);
    const { model, metrics } = aggregator.finish();
    const record = roundRecord({
      runId: row.runId,
      studyId: study.id,
      round: row.round,
      model,
      parentHash: row.parentHash,
      updateHashes: accepted.map((u) => u.updateSha256),
      contributors: accepted.flatMap((u) =>
        u.contributors.map((c) => ({ contributorId: c, grantId: grants.get(c)! })),
      ),
      privacy: metrics.privacy
        ? { epsilon: metrics.privacy.epsilon, delta: metrics.privacy.delta }
        : null,
    });
    return {
      model,
      outcome: {
        record,
        strategyState: serialiseStrategyState(strategy.state()),
        metrics: nodeMetrics(accepted),
        numUpdates: accepted.length,
      },
    };
  }

  /**
   * Step 2: the round's record on the ledger; its transaction id, or null when the ledger
   * holds a different model for the round (the round then fails: it cannot be recorded).
   */
  private async recordOnLedger(row: RoundRow): Promise<string | null> {
    const record = row.pending!.record;
    try {
      const { txId } = await this.ledger.submit('training', 'RecordRound', [
        JSON.stringify(record),
      ]);
      return txId;
    } catch (e) {
      const held = await this.recorded(row.runId, row.round);
      if (!held) throw e;
      if (held.modelHash === record.modelHash) {
        this.logger.log(
          { runId: row.runId, round: row.round },
          'round already on the ledger: adopted',
        );
        return held.txId;
      }
      const reason = `the ledger already records another model for round ${row.round}`;
      this.logger.error({ runId: row.runId, round: row.round }, reason);
      await this.repo.failRound(row.runId, row.round, reason);
      this.events.emit('round', { runId: row.runId, round: row.round, status: 'FAILED' });
      return null;
    }
  }

  /** What the ledger holds for a round, or null (not recorded, or the ledger unreachable). */
  private async recorded(
    runId: string,
    round: number,
  ): Promise<(RoundRecord & { txId: string }) | null> {
    try {
      return await this.ledger.evaluate<RoundRecord & { txId: string }>('training', 'GetRound', [
        runId,
        String(round),
      ]);
    } catch {
      return null;
    }
  }

  private async study(id: string): Promise<StudyEntity> {
    const study = await this.studies.get(id);
    if (!study)
      throw new Error(
        'the study of a training run is missing, or withheld as not what the ledger registered',
      );
    return study;
  }
}

/** A buffer's float32 values in an aligned array of their own. */
function floats(b: Buffer): Float32Array {
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** The nodes' held-out metrics, averaged with weights by their example counts. */
function nodeMetrics(updates: AcceptedUpdate[]): NodeMetrics {
  const out: NodeMetrics = {};
  for (const k of ['loss', 'accuracy', 'auc'] as const) {
    let sum = 0;
    let weight = 0;
    for (const u of updates) {
      const v = u.metrics?.[k];
      if (typeof v === 'number') {
        sum += v * u.numExamples;
        weight += u.numExamples;
      }
    }
    if (weight > 0) out[k] = sum / weight;
  }
  return out;
}
