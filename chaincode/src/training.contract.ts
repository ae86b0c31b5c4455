// Provenance of federated training: every round's model is traced to its parent model,
// the updates that went into it, a commitment to its contributors and the privacy spent.
// And the studies themselves: each study's terms (owner, features, label, model, ...) are
// registered once, as a hash, so that what a patient's TRAIN grant to a study covers, and who
// runs it, cannot change in any organisation's database.
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import { caller, emit, getJson, key, KEYS, pad, putIndex, putJson, txTime, values } from './state';
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

/** A study as registered: the hash of its terms, which never change once registered. */
export interface StudyRegistration {
  studyId: string;
  ownerId: string;
  /** SHA-256 of the study's terms as the API computes it (its studyTermsHash). */
  termsHash: string;
  /**
   * Registered at an upgrade from a study created before studies were registered: its terms
   * were taken as the database held them then.
   */
  legacy: boolean;
  txId: string;
  registeredAt: string;
  registeredBy: string;
}

export const TRAINING_EVENTS = {
  recorded: 'RoundRecorded',
  studyRegistered: 'StudyRegistered',
} as const;

const STUDY_FIELDS = ['studyId', 'ownerId', 'termsHash', 'legacy'] as const;

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

  /**
   * Registers a study's terms, once: a study id is never registered again, so its terms (and
   * owner) stand as first written. A legacy registration (of a study that predates
   * registration) is accepted only until the calling organisation registers a study of its
   * own: after that, a study its database holds but the ledger does not was never created
   * through it, and is not taken on trust.
   */
  @Transaction()
  @Returns('string')
  async RegisterStudy(ctx: Context, studyJson: string): Promise<string> {
    const s = v.parseJson(studyJson, 'study');
    v.only(s, 'study', STUDY_FIELDS);
    const entry: StudyRegistration = {
      studyId: v.id(s.studyId, 'study.studyId'),
      ownerId: v.principal(s.ownerId, 'study.ownerId'),
      termsHash: v.sha256(s.termsHash, 'study.termsHash'),
      legacy: s.legacy === undefined ? false : v.bool(s.legacy, 'study.legacy'),
      txId: ctx.stub.getTxID(),
      registeredAt: txTime(ctx),
      registeredBy: caller(ctx),
    };
    const k = key(ctx, KEYS.study, [entry.studyId]);
    if (await getJson(ctx, k)) {
      throw new ChaincodeError('CONFLICT', `study ${entry.studyId} is already registered`);
    }
    const registrar = key(ctx, KEYS.studyRegistrar, [entry.registeredBy]);
    const registersOwn = (await ctx.stub.getState(registrar))?.length > 0;
    if (entry.legacy && registersOwn) {
      throw new ChaincodeError(
        'FORBIDDEN',
        `organisation ${entry.registeredBy} registers its studies as it creates them: a legacy registration is no longer accepted from it`,
      );
    }
    await putJson(ctx, k, entry);
    if (!entry.legacy && !registersOwn)
      await putIndex(ctx, KEYS.studyRegistrar, [entry.registeredBy]);
    emit(ctx, TRAINING_EVENTS.studyRegistered, entry);
    return JSON.stringify(entry);
  }

  @Transaction(false)
  @Returns('string')
  async GetStudy(ctx: Context, studyId: string): Promise<string> {
    const id = v.id(studyId, 'studyId');
    const entry = await getJson<StudyRegistration>(ctx, key(ctx, KEYS.study, [id]));
    if (!entry) throw new ChaincodeError('NOT_FOUND', `study ${id} is not registered`);
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
