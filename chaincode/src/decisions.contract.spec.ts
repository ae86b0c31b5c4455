import './testing/quiet-logs';
import { exportJWK, generateKeyPair } from 'jose';
import { ConsentContract } from './consent.contract';
import {
  DECISION_EVENTS,
  DECISION_KEYS,
  DecisionRecord,
  DecisionsContract,
  ModelDeployment,
} from './decisions.contract';
import { ChaincodeError } from './errors';
import { KeysContract } from './keys.contract';
import { eventsOf, FakeLedger } from './testing/fake-ledger';
import { TrainingContract } from './training.contract';

const decisions = new DecisionsContract();
const training = new TrainingContract();
const consent = new ConsentContract();

const hash = (seed: number) => seed.toString(16).padStart(2, '0').repeat(32);

function deployment(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    id: 'dep-1',
    runId: 'run-1',
    round: 2,
    modelHash: hash(2),
    features: ['2345-7', '30525-0'],
    label: '44054006',
    ...overrides,
  });
}

function decision(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    id: 'dec-1',
    patientId: 'pat-1',
    deploymentId: 'dep-1',
    modelHash: hash(2),
    actorId: 'dr-1',
    grantId: 'grant-1',
    inputCommitment: hash(0xee),
    output: 0.73,
    ...overrides,
  });
}

describe('DecisionsContract', () => {
  let ledger: FakeLedger;

  beforeEach(async () => {
    ledger = new FakeLedger();
    ledger.setTime('2025-01-15T09:30:00Z');
    for (const round of [1, 2]) {
      await ledger.invoke((ctx) =>
        training.RecordRound(
          ctx,
          JSON.stringify({
            runId: 'run-1',
            studyId: 'study-1',
            round,
            modelHash: hash(round),
            parentHash: round === 1 ? null : hash(round - 1),
            updateHashes: [hash(0xa0 + round)],
            contributorsRoot: hash(0xc0 + round),
            numContributors: 3,
            epsilon: null,
            delta: null,
          }),
        ),
      );
    }
    await ledger.invoke((ctx) =>
      consent.GrantConsent(
        ctx,
        JSON.stringify({
          id: 'grant-1',
          patientId: 'pat-1',
          grantee: { type: 'CLINICIAN', id: 'dr-1' },
          purpose: 'TREATMENT',
          actions: ['READ'],
          validFrom: '2025-01-01T00:00:00Z',
        }),
      ),
    );
  });

  async function rejection(call: Parameters<FakeLedger['failure']>[0]): Promise<ChaincodeError> {
    const error = await ledger.failure(call);
    expect(error).toBeInstanceOf(ChaincodeError);
    return error as ChaincodeError;
  }

  it("deploys a run's last round, linked to its RecordRound transaction, with one event", async () => {
    const round2 = ledger.read<{ txId: string }>('custodia.round', ['run-1', '0000000002'])!;
    const { result, tx } = await ledger.invoke<ModelDeployment>((ctx) =>
      decisions.DeployModel(ctx, deployment()),
    );
    expect(result).toMatchObject({
      id: 'dep-1',
      runId: 'run-1',
      studyId: 'study-1',
      round: 2,
      modelHash: hash(2),
      roundTxId: round2.txId,
      txId: tx.txId,
      deployedBy: 'Org1MSP',
    });
    expect(ledger.read(DECISION_KEYS.deployment, ['dep-1'])).toEqual(result);
    expect(eventsOf(tx)).toEqual([{ name: DECISION_EVENTS.deployed, payload: result }]);
  });

  it('refuses to deploy a round that is not the last, a wrong hash, or a run twice', async () => {
    expect(
      (
        await rejection((ctx) =>
          decisions.DeployModel(ctx, deployment({ round: 1, modelHash: hash(1) })),
        )
      ).code,
    ).toBe('CONFLICT');
    expect(
      (await rejection((ctx) => decisions.DeployModel(ctx, deployment({ modelHash: hash(9) }))))
        .code,
    ).toBe('CONFLICT');
    expect(
      (await rejection((ctx) => decisions.DeployModel(ctx, deployment({ round: 3 })))).code,
    ).toBe('NOT_FOUND');
    await ledger.invoke((ctx) => decisions.DeployModel(ctx, deployment()));
    const again = await rejection((ctx) => decisions.DeployModel(ctx, deployment({ id: 'dep-2' })));
    expect(again.message).toContain('already deployed as dep-1');
  });

  it('records a decision under a grant that lets the actor read for treatment', async () => {
    await ledger.invoke((ctx) => decisions.DeployModel(ctx, deployment()));
    const { result, tx } = await ledger.invoke<DecisionRecord>((ctx) =>
      decisions.RecordDecision(ctx, decision()),
    );
    expect(result).toEqual({
      id: 'dec-1',
      patientId: 'pat-1',
      deploymentId: 'dep-1',
      modelHash: hash(2),
      actorId: 'dr-1',
      grantId: 'grant-1',
      inputCommitment: hash(0xee),
      output: 0.73,
      txId: tx.txId,
      decidedAt: '2025-01-15T09:30:00.000Z',
      recordedBy: 'Org1MSP',
    });
    expect(eventsOf(tx)).toEqual([{ name: DECISION_EVENTS.recorded, payload: result }]);
    const { result: read } = await ledger.invoke<DecisionRecord>((ctx) =>
      decisions.GetDecision(ctx, 'dec-1'),
    );
    expect(read).toEqual(result);
  });

  it("refuses a decision under another clinician's, a revoked or a missing grant", async () => {
    await ledger.invoke((ctx) => decisions.DeployModel(ctx, deployment()));
    const other = await rejection((ctx) =>
      decisions.RecordDecision(ctx, decision({ actorId: 'dr-2' })),
    );
    expect(other.code).toBe('FORBIDDEN');
    expect(
      (await rejection((ctx) => decisions.RecordDecision(ctx, decision({ grantId: 'nope' })))).code,
    ).toBe('FORBIDDEN');
    await ledger.invoke((ctx) => consent.RevokeConsent(ctx, 'grant-1'));
    expect((await rejection((ctx) => decisions.RecordDecision(ctx, decision()))).code).toBe(
      'FORBIDDEN',
    );
  });

  it('refuses a decision on an unknown deployment, another model, a bad output or a repeat', async () => {
    expect((await rejection((ctx) => decisions.RecordDecision(ctx, decision()))).code).toBe(
      'NOT_FOUND',
    );
    await ledger.invoke((ctx) => decisions.DeployModel(ctx, deployment()));
    expect(
      (await rejection((ctx) => decisions.RecordDecision(ctx, decision({ modelHash: hash(1) }))))
        .code,
    ).toBe('CONFLICT');
    for (const output of [1.5, -0.1, 'high', null]) {
      expect(
        (await rejection((ctx) => decisions.RecordDecision(ctx, decision({ output })))).code,
      ).toBe('INVALID_ARGUMENT');
    }
    expect(
      (await rejection((ctx) => decisions.RecordDecision(ctx, decision({ age: 54 })))).message,
    ).toContain('decision.age');
    await ledger.invoke((ctx) => decisions.RecordDecision(ctx, decision()));
    expect((await rejection((ctx) => decisions.RecordDecision(ctx, decision()))).code).toBe(
      'CONFLICT',
    );
  });

  it('refuses every decision about a patient who refused AI decisions, until they allow them again', async () => {
    await ledger.invoke((ctx) => decisions.DeployModel(ctx, deployment()));
    const setAllow = (allow: boolean) =>
      ledger.invoke((ctx) =>
        decisions.SetAiDecisions(ctx, JSON.stringify({ patientId: 'pat-1', allow })),
      );
    const { tx } = await setAllow(false);
    expect(eventsOf(tx).map((e) => e.name)).toEqual([DECISION_EVENTS.setting]);
    const refused = await rejection((ctx) => decisions.RecordDecision(ctx, decision()));
    expect(refused.code).toBe('FORBIDDEN');
    expect(refused.message).toContain('refused AI decisions');
    await setAllow(true);
    await ledger.invoke((ctx) => decisions.RecordDecision(ctx, decision()));
    expect(
      (
        await rejection((ctx) =>
          decisions.SetAiDecisions(ctx, JSON.stringify({ patientId: 'pat-1', allow: 'no' })),
        )
      ).code,
    ).toBe('INVALID_ARGUMENT');
  });

  it('refuses a decision under an unsigned grant once the patient accepts only signed ones', async () => {
    const keys = new KeysContract();
    await ledger.invoke((ctx) => decisions.DeployModel(ctx, deployment()));
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = JSON.stringify(await exportJWK(publicKey));
    await ledger.invoke((ctx) => keys.RegisterPatientKey(ctx, 'pat-1', jwk, ''));
    await ledger.invoke((ctx) => decisions.RecordDecision(ctx, decision()));
    await ledger.invoke((ctx) => keys.SetSignedConsent(ctx, 'pat-1', 'true', ''));
    const refused = await rejection((ctx) =>
      decisions.RecordDecision(ctx, decision({ id: 'dec-2' })),
    );
    expect(refused.code).toBe('FORBIDDEN');
    expect(refused.message).toContain('accepts only grants they signed');
  });

  it('answers NOT_FOUND for a decision or deployment that was never recorded', async () => {
    expect((await rejection((ctx) => decisions.GetDecision(ctx, 'dec-9'))).code).toBe('NOT_FOUND');
    expect((await rejection((ctx) => decisions.GetDeployment(ctx, 'dep-9'))).code).toBe(
      'NOT_FOUND',
    );
  });
});
