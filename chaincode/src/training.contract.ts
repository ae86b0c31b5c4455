// Provenance of federated training: every round's model is traced to its parent model,
// the updates that went into it, a commitment to its contributors and the privacy spent.
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import { caller, emit, getJson, key, KEYS, pad, putJson, txTime, values } from './state';
import * as v from './validation';
import { ChaincodeError, MAX_HASHES } from './validation';

export interface TrainingRound {
  runId: string;
  studyId: string;
  round: number;
  modelHash: string;
  parentHash: string | null;
  updateHashes: string[];
  /** Merkle root over the sorted contributor ids (and the grant ids used). */
  contributorsRoot: string;
  numContributors: number;
  /** Privacy budget spent so far (null without differential privacy). */
  epsilon: number | null;
  delta: number | null;
  txId: string;
  recordedAt: string;
  recordedBy: string;
}

export const TRAINING_EVENTS = { recorded: 'RoundRecorded' } as const;

const FIELDS = [
  'runId',
  'studyId',
  'round',
  'modelHash',
  'parentHash',
  'updateHashes',
  'contributorsRoot',
  'numContributors',
  'epsilon',
  'delta',
] as const;

@Info({ title: 'training', description: 'Provenance of federated training rounds' })
export class TrainingContract extends Contract {
  constructor() {
    super('training');
  }

  @Transaction()
  @Returns('string')
  async RecordRound(ctx: Context, roundJson: string): Promise<string> {
    const r = v.parseJson(roundJson, 'round');
    v.only(r, 'round', FIELDS);
    const runId = v.id(r.runId, 'round.runId');
    const round = v.positiveInt(r.round, 'round.round');
    const optionalNumber = (x: unknown, f: string) =>
      x === undefined || x === null ? null : v.nonNegativeNumber(x, f);
    const parentHash =
      r.parentHash === undefined || r.parentHash === null
        ? null
        : v.sha256(r.parentHash, 'round.parentHash');
    const entry: TrainingRound = {
      runId,
      studyId: v.id(r.studyId, 'round.studyId'),
      round,
      modelHash: v.sha256(r.modelHash, 'round.modelHash'),
      parentHash,
      updateHashes: v.list(r.updateHashes, 'round.updateHashes', v.sha256, {
        min: 1,
        max: MAX_HASHES,
      }),
      contributorsRoot: v.sha256(r.contributorsRoot, 'round.contributorsRoot'),
      numContributors: v.positiveInt(r.numContributors, 'round.numContributors'),
      epsilon: optionalNumber(r.epsilon, 'round.epsilon'),
      delta: optionalNumber(r.delta, 'round.delta'),
      txId: ctx.stub.getTxID(),
      recordedAt: txTime(ctx),
      recordedBy: caller(ctx),
    };
    const k = key(ctx, KEYS.round, [runId, pad(round)]);
    if (await getJson(ctx, k)) {
      throw new ChaincodeError('CONFLICT', `round ${round} of run ${runId} is already recorded`);
    }
    if (round > 1) {
      const previous = await getJson<TrainingRound>(
        ctx,
        key(ctx, KEYS.round, [runId, pad(round - 1)]),
      );
      if (!previous) {
        throw new ChaincodeError(
          'CONFLICT',
          `round ${round - 1} of run ${runId} is not recorded yet`,
        );
      }
      if (previous.recordedBy !== entry.recordedBy) {
        throw new ChaincodeError(
          'FORBIDDEN',
          `run ${runId} is coordinated by another organisation`,
        );
      }
      if (previous.studyId !== entry.studyId) {
        throw new ChaincodeError('CONFLICT', `run ${runId} belongs to another study`);
      }
      if (parentHash !== previous.modelHash) {
        throw new ChaincodeError(
          'CONFLICT',
          `round.parentHash must be the model hash of round ${round - 1}`,
        );
      }
    }
    await putJson(ctx, k, entry);
    emit(ctx, TRAINING_EVENTS.recorded, entry);
    return JSON.stringify(entry);
  }

  @Transaction(false)
  @Returns('string')
  async GetRound(ctx: Context, runId: string, round: string): Promise<string> {
    const id = v.id(runId, 'runId');
    const n = v.positiveInt(round, 'round');
    const entry = await getJson<TrainingRound>(ctx, key(ctx, KEYS.round, [id, pad(n)]));
    if (!entry) throw new ChaincodeError('NOT_FOUND', `round ${n} of run ${id} is not recorded`);
    return JSON.stringify(entry);
  }

  @Transaction(false)
  @Returns('string')
  async ListRounds(ctx: Context, runId: string): Promise<string> {
    const id = v.id(runId, 'runId');
    return JSON.stringify(await values<TrainingRound>(ctx, KEYS.round, [id]));
  }
}
