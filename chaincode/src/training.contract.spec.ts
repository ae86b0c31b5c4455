import './testing/quiet-logs';
import { KEYS } from './state';
import { eventsOf, FakeLedger } from './testing/fake-ledger';
import {
  StudyRegistration,
  TRAINING_EVENTS,
  TrainingContract,
  TrainingRound,
} from './training.contract';
import { ChaincodeError } from './errors';

const training = new TrainingContract();

/** A distinct, well-formed SHA-256 hex digest per seed. */
const hash = (seed: number) => seed.toString(16).padStart(2, '0').repeat(32);
const model = (round: number) => hash(round);

/** A valid round of run-1 for study-1, chained to the model of the round before. */
function round(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    runId: 'run-1',
    studyId: 'study-1',
    round: n,
    modelHash: model(n),
    parentHash: n === 1 ? null : model(n - 1),
    updateHashes: [hash(0xa0 + n), hash(0xb0 + n)],
    contributorsRoot: hash(0xc0 + n),
    numContributors: 12,
    epsilon: 0.5 * n,
    delta: 1e-5,
    ...overrides,
  };
}

describe('TrainingContract', () => {
  let ledger: FakeLedger;

  beforeEach(() => {
    ledger = new FakeLedger();
    ledger.setTime('2025-01-15T09:30:00Z');
    ledger.setCaller('CoordinatorMSP');
  });

  function record(body: Record<string, unknown>) {
    return ledger.invoke<TrainingRound>((ctx) => training.RecordRound(ctx, JSON.stringify(body)));
  }

  async function rejection(body: Record<string, unknown> | string): Promise<string> {
    const json = typeof body === 'string' ? body : JSON.stringify(body);
    const error = await ledger.failure((ctx) => training.RecordRound(ctx, json));
    expect(error).toBeInstanceOf(ChaincodeError);
    return error.message;
  }

  describe('RecordRound', () => {
    it('records round 1 without a parent, stamped with the transaction time, id and caller', async () => {
      const { result, tx } = await record(round(1));
      const expected: TrainingRound = {
        runId: 'run-1',
        studyId: 'study-1',
        round: 1,
        modelHash: model(1),
        parentHash: null,
        updateHashes: [hash(0xa1), hash(0xb1)],
        contributorsRoot: hash(0xc1),
        numContributors: 12,
        epsilon: 0.5,
        delta: 1e-5,
        txId: tx.txId,
        recordedAt: '2025-01-15T09:30:00.000Z',
        recordedBy: 'CoordinatorMSP',
      };
      expect(result).toEqual(expected);
      expect(ledger.read(KEYS.round, ['run-1', '0000000001'])).toEqual(expected);
    });

    it('emits exactly one RoundRecorded event carrying the round', async () => {
      const { result, tx } = await record(round(1));
      expect(eventsOf(tx)).toEqual([{ name: TRAINING_EVENTS.recorded, payload: result }]);
      expect(TRAINING_EVENTS.recorded).toBe('RoundRecorded');
    });

    it('refuses a later round recorded by another organisation than the run started with', async () => {
      await record(round(1));
      ledger.setCaller('OtherMSP');
      expect(await rejection(round(2))).toMatch(
        /^\[FORBIDDEN\] run run-1 is coordinated by another/,
      );
    });

    it("records round 2 whose parent is round 1's model", async () => {
      await record(round(1));
      const { result } = await record(round(2));
      expect(result).toMatchObject({ round: 2, parentHash: model(1), modelHash: model(2) });
    });

    it('records a round without differential privacy with null epsilon and delta', async () => {
      const body = round(1);
      delete body.epsilon;
      delete body.delta;
      const { result } = await record(body);
      expect(result.epsilon).toBeNull();
      expect(result.delta).toBeNull();
    });

    it('accepts a round number given as a string of digits', async () => {
      const { result } = await record(round(1, { round: '1' }));
      expect(result.round).toBe(1);
    });

    it('rejects recording the same round twice', async () => {
      await record(round(1));
      expect(await rejection(round(1))).toBe('[CONFLICT] round 1 of run run-1 is already recorded');
    });

    it('rejects round 3 before round 2 is recorded', async () => {
      await record(round(1));
      expect(await rejection(round(3))).toBe('[CONFLICT] round 2 of run run-1 is not recorded yet');
    });

    it("rejects a parent hash other than the previous round's model hash", async () => {
      await record(round(1));
      expect(await rejection(round(2, { parentHash: hash(0xee) }))).toBe(
        '[CONFLICT] round.parentHash must be the model hash of round 1',
      );
      expect(await rejection(round(2, { parentHash: null }))).toBe(
        '[CONFLICT] round.parentHash must be the model hash of round 1',
      );
    });

    it('rejects continuing a run under another study', async () => {
      await record(round(1));
      expect(await rejection(round(2, { studyId: 'study-2' }))).toBe(
        '[CONFLICT] run run-1 belongs to another study',
      );
    });

    it('keeps runs apart: round 1 of another run needs no parent from this one', async () => {
      await record(round(1));
      const { result } = await record(round(1, { runId: 'run-2', modelHash: hash(0x77) }));
      expect(result.runId).toBe('run-2');
    });

    it.each<[string, Record<string, unknown> | string, string]>([
      ['input that is not JSON', 'round 1', 'round'],
      ['an unknown field', round(1, { loss: 0.3 }), 'round.loss'],
      ['a run id with a space', round(1, { runId: 'run 1' }), 'round.runId'],
      ['round 0', round(1, { round: 0 }), 'round.round'],
      ['a missing study', round(1, { studyId: undefined }), 'round.studyId'],
      [
        'an uppercase model hash',
        round(1, { modelHash: model(0xab).toUpperCase() }),
        'round.modelHash',
      ],
      ['a short parent hash', round(2, { parentHash: model(1).slice(1) }), 'round.parentHash'],
      ['no update hashes', round(1, { updateHashes: [] }), 'round.updateHashes'],
      ['a malformed update hash', round(1, { updateHashes: ['abc'] }), 'round.updateHashes[0]'],
      [
        'a repeated update hash',
        round(1, { updateHashes: [hash(1), hash(1)] }),
        'round.updateHashes',
      ],
      [
        'a malformed contributors root',
        round(1, { contributorsRoot: '' }),
        'round.contributorsRoot',
      ],
      ['zero contributors', round(1, { numContributors: 0 }), 'round.numContributors'],
      ['a negative epsilon', round(1, { epsilon: -0.1 }), 'round.epsilon'],
      ['an epsilon given as a string', round(1, { epsilon: '1' }), 'round.epsilon'],
      ['a negative delta', round(1, { delta: -1e-5 }), 'round.delta'],
    ])('rejects %s as an invalid argument naming the field', async (_case, body, field) => {
      const message = await rejection(body);
      expect(message.startsWith(`[INVALID_ARGUMENT] ${field} `)).toBe(true);
    });

    it('rejects more than 1024 update hashes', async () => {
      const updateHashes = Array.from({ length: 1025 }, (_, i) => i.toString(16).padStart(64, '0'));
      const message = await rejection(round(1, { updateHashes }));
      expect(message).toBe('[INVALID_ARGUMENT] round.updateHashes must hold 1 to 1024 items');
    });
  });

  describe('GetRound and ListRounds', () => {
    beforeEach(async () => {
      for (let n = 1; n <= 11; n++) await record(round(n));
      await record(round(1, { runId: 'run-10' }));
    });

    it('reads one recorded round', async () => {
      const { result, tx } = await ledger.invoke<TrainingRound>((ctx) =>
        training.GetRound(ctx, 'run-1', '2'),
      );
      expect(result).toEqual(ledger.read(KEYS.round, ['run-1', '0000000002']));
      expect(tx.stub.putState.called).toBe(false);
    });

    it('rejects reading a round that was never recorded', async () => {
      const error = await ledger.failure((ctx) => training.GetRound(ctx, 'run-1', '12'));
      expect(error.message).toBe('[NOT_FOUND] round 12 of run run-1 is not recorded');
    });

    it("lists exactly the run's rounds in round order", async () => {
      const { result } = await ledger.invoke<TrainingRound[]>((ctx) =>
        training.ListRounds(ctx, 'run-1'),
      );
      expect(result.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(result.every((r) => r.runId === 'run-1')).toBe(true);
      for (let i = 1; i < result.length; i++) {
        expect(result[i].parentHash).toBe(result[i - 1].modelHash);
      }
    });

    it('lists nothing for an unknown run', async () => {
      const { result } = await ledger.invoke<TrainingRound[]>((ctx) =>
        training.ListRounds(ctx, 'run-404'),
      );
      expect(result).toEqual([]);
    });
  });

  describe('RegisterStudy', () => {
    const study = (overrides: Record<string, unknown> = {}) => ({
      studyId: 'study-1',
      ownerId: 'res-1',
      termsHash: hash(0x51),
      ...overrides,
    });

    function register(body: Record<string, unknown>) {
      return ledger.invoke<StudyRegistration>((ctx) =>
        training.RegisterStudy(ctx, JSON.stringify(body)),
      );
    }

    async function refusal(body: Record<string, unknown>): Promise<string> {
      const error = await ledger.failure((ctx) =>
        training.RegisterStudy(ctx, JSON.stringify(body)),
      );
      expect(error).toBeInstanceOf(ChaincodeError);
      return error.message;
    }

    it('registers the terms hash and owner, stamped with the transaction, and emits one event', async () => {
      const { result, tx } = await register(study());
      const expected: StudyRegistration = {
        studyId: 'study-1',
        ownerId: 'res-1',
        termsHash: hash(0x51),
        legacy: false,
        txId: tx.txId,
        registeredAt: '2025-01-15T09:30:00.000Z',
        registeredBy: 'CoordinatorMSP',
      };
      expect(result).toEqual(expected);
      expect(ledger.read(KEYS.study, ['study-1'])).toEqual(expected);
      expect(eventsOf(tx)).toEqual([{ name: TRAINING_EVENTS.studyRegistered, payload: expected }]);
    });

    it('never registers a study again, so its terms and owner stand as first written', async () => {
      await register(study());
      const message = await refusal(study({ ownerId: 'res-evil', termsHash: hash(0x52) }));
      expect(message).toBe('[CONFLICT] study study-1 is already registered');
      expect(ledger.read(KEYS.study, ['study-1'])).toMatchObject({
        ownerId: 'res-1',
        termsHash: hash(0x51),
      });
    });

    it('accepts legacy registrations only until the organisation registers a study of its own', async () => {
      expect((await register(study({ legacy: true }))).result.legacy).toBe(true);
      await register(study({ studyId: 'study-2' }));
      const message = await refusal(study({ studyId: 'study-3', legacy: true }));
      expect(message).toMatch(/^\[FORBIDDEN\] organisation CoordinatorMSP registers its studies/);
      // Another organisation's upgrade is its own.
      ledger.setCaller('Org1MSP');
      expect((await register(study({ studyId: 'study-4', legacy: true }))).result.legacy).toBe(
        true,
      );
    });

    it.each([
      ['a malformed terms hash', { termsHash: 'abc' }, 'study.termsHash'],
      ['an owner with a control character', { ownerId: 'res\u0000' }, 'study.ownerId'],
      ['a study id that is not an id', { studyId: 'study 1' }, 'study.studyId'],
      ['an unknown field', { features: ['2345-7'] }, 'study'],
    ])('rejects %s, naming the field', async (_case, overrides, field) => {
      const message = await refusal(study(overrides));
      expect(message.startsWith(`[INVALID_ARGUMENT] ${field}`)).toBe(true);
    });

    it('reads a registered study, and NOT_FOUND for one never registered', async () => {
      await register(study());
      const { result, tx } = await ledger.invoke<StudyRegistration>((ctx) =>
        training.GetStudy(ctx, 'study-1'),
      );
      expect(result.termsHash).toBe(hash(0x51));
      expect(tx.stub.putState.called).toBe(false);
      const error = await ledger.failure((ctx) => training.GetStudy(ctx, 'nope'));
      expect(error.message).toBe('[NOT_FOUND] study nope is not registered');
    });
  });
});
