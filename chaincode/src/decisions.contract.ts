// Auditable AI decisions: a deployment ties a model to the training round that produced it, and
// each decision ties a risk score to that deployment, the clinician who asked, the grant they
// asked under and a salted commitment to the inputs. Ids, hashes and a number only: no PHI.
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import { grantApplies } from './policy';
import type { GrantRecord } from './consent.contract';
import { loadKeyring } from './keys.contract';
import { choiceAnswer, choiceOf, PatientChoice, recordChoice } from './patient-choice';
import { caller, emit, getJson, key, KEYS, pad, putJson, txTime } from './state';
import type { TrainingRound } from './training.contract';
import * as v from './validation';
import { ChaincodeError } from './validation';

/** A COMPLETED run's final model, released for decisions. */
export interface ModelDeployment {
  id: string;
  runId: string;
  studyId: string;
  /** The run's last round, whose RecordRound recorded `modelHash`. */
  round: number;
  modelHash: string;
  /** The transaction of that RecordRound. */
  roundTxId: string;
  /** LOINC codes of the inputs, in order, and the SNOMED CT code predicted. */
  features: string[];
  label: string;
  txId: string;
  deployedAt: string;
  deployedBy: string;
}

/** One risk assessment of one patient. */
export interface DecisionRecord {
  id: string;
  /** The patient's pseudonymous id, as the consent grants name it. */
  patientId: string;
  deploymentId: string;
  modelHash: string;
  actorId: string;
  grantId: string;
  /** sha256 over a salt and the canonical inputs; the salt stays off the ledger. */
  inputCommitment: string;
  /** The model's probability. */
  output: number;
  txId: string;
  decidedAt: string;
  recordedBy: string;
}

/** A patient's choice whether AI decisions may be made about them (absent: allowed). */
export type AiDecisionsSetting = PatientChoice;

export const DECISION_EVENTS = {
  deployed: 'ModelDeployed',
  recorded: 'DecisionRecorded',
  setting: 'AiDecisionsSet',
} as const;

/** This contract's keys (kept here rather than in state.ts's shared table). */
export const DECISION_KEYS = {
  deployment: 'custodia.deployment',
  deploymentByRun: 'custodia.deployment~run',
  decision: 'custodia.decision',
  setting: 'custodia.ai-setting',
} as const;

const DEPLOYMENT_FIELDS = ['id', 'runId', 'round', 'modelHash', 'features', 'label'] as const;
const DECISION_FIELDS = [
  'id',
  'patientId',
  'deploymentId',
  'modelHash',
  'actorId',
  'actorOrganizationId',
  'grantId',
  'inputCommitment',
  'output',
] as const;

@Info({ title: 'decisions', description: 'Deployed models and the AI decisions made with them' })
export class DecisionsContract extends Contract {
  constructor() {
    super('decisions');
  }

  /**
   * Deploys the model of a run's last recorded round. The round must be on the ledger with
   * this model hash, and no later round may be: a deployment is of a finished run.
   */
  @Transaction()
  @Returns('string')
  async DeployModel(ctx: Context, deploymentJson: string): Promise<string> {
    const d = v.parseJson(deploymentJson, 'deployment');
    v.only(d, 'deployment', DEPLOYMENT_FIELDS);
    const id = v.id(d.id, 'deployment.id');
    const runId = v.id(d.runId, 'deployment.runId');
    const round = v.positiveInt(d.round, 'deployment.round');
    const modelHash = v.sha256(d.modelHash, 'deployment.modelHash');
    const features = v.list(d.features, 'deployment.features', v.code, { min: 1 });
    const label = v.code(d.label, 'deployment.label');

    const recorded = await getJson<TrainingRound>(ctx, key(ctx, KEYS.round, [runId, pad(round)]));
    if (!recorded) {
      throw new ChaincodeError('NOT_FOUND', `round ${round} of run ${runId} is not recorded`);
    }
    if (recorded.modelHash !== modelHash) {
      throw new ChaincodeError(
        'CONFLICT',
        `deployment.modelHash is not the model recorded for round ${round} of run ${runId}`,
      );
    }
    if (await getJson(ctx, key(ctx, KEYS.round, [runId, pad(round + 1)]))) {
      throw new ChaincodeError('CONFLICT', `round ${round} is not the last round of run ${runId}`);
    }
    const k = key(ctx, DECISION_KEYS.deployment, [id]);
    if (await getJson(ctx, k)) throw new ChaincodeError('CONFLICT', `deployment ${id} exists`);
    const byRun = key(ctx, DECISION_KEYS.deploymentByRun, [runId]);
    const existing = await getJson<{ deploymentId: string }>(ctx, byRun);
    if (existing) {
      throw new ChaincodeError(
        'CONFLICT',
        `run ${runId} is already deployed as ${existing.deploymentId}`,
      );
    }
    const entry: ModelDeployment = {
      id,
      runId,
      studyId: recorded.studyId,
      round,
      modelHash,
      roundTxId: recorded.txId,
      features,
      label,
      txId: ctx.stub.getTxID(),
      deployedAt: txTime(ctx),
      deployedBy: caller(ctx),
    };
    await putJson(ctx, k, entry);
    await putJson(ctx, byRun, { deploymentId: id });
    emit(ctx, DECISION_EVENTS.deployed, entry);
    return JSON.stringify(entry);
  }

  @Transaction(false)
  @Returns('string')
  async GetDeployment(ctx: Context, deploymentId: string): Promise<string> {
    const id = v.id(deploymentId, 'deploymentId');
    const entry = await getJson<ModelDeployment>(ctx, key(ctx, DECISION_KEYS.deployment, [id]));
    if (!entry) throw new ChaincodeError('NOT_FOUND', `deployment ${id} does not exist`);
    return JSON.stringify(entry);
  }

  /**
   * Records a decision. The deployment must exist with this model, and the grant cited must,
   * at this transaction's time, let the actor READ the patient's records for TREATMENT.
   */
  @Transaction()
  @Returns('string')
  async RecordDecision(ctx: Context, decisionJson: string): Promise<string> {
    const d = v.parseJson(decisionJson, 'decision');
    v.only(d, 'decision', DECISION_FIELDS);
    const id = v.id(d.id, 'decision.id');
    const patientId = v.id(d.patientId, 'decision.patientId');
    const deploymentId = v.id(d.deploymentId, 'decision.deploymentId');
    const modelHash = v.sha256(d.modelHash, 'decision.modelHash');
    const actorId = v.principal(d.actorId, 'decision.actorId');
    const actorOrganizationId =
      d.actorOrganizationId === undefined || d.actorOrganizationId === null
        ? null
        : v.principal(d.actorOrganizationId, 'decision.actorOrganizationId');
    const grantId = v.id(d.grantId, 'decision.grantId');
    const inputCommitment = v.sha256(d.inputCommitment, 'decision.inputCommitment');
    const output = v.nonNegativeNumber(d.output, 'decision.output');
    if (output > 1) {
      throw new ChaincodeError('INVALID_ARGUMENT', 'decision.output must be a probability');
    }
    const now = txTime(ctx);

    const k = key(ctx, DECISION_KEYS.decision, [id]);
    if (await getJson(ctx, k)) throw new ChaincodeError('CONFLICT', `decision ${id} exists`);
    const deployment = await getJson<ModelDeployment>(
      ctx,
      key(ctx, DECISION_KEYS.deployment, [deploymentId]),
    );
    if (!deployment) {
      throw new ChaincodeError('NOT_FOUND', `deployment ${deploymentId} does not exist`);
    }
    if (deployment.modelHash !== modelHash) {
      throw new ChaincodeError(
        'CONFLICT',
        `decision.modelHash is not deployment ${deploymentId}'s`,
      );
    }
    const setting = await choiceOf(ctx, DECISION_KEYS.setting, patientId);
    if (setting && !setting.allow) {
      throw new ChaincodeError('FORBIDDEN', `patient ${patientId} has refused AI decisions`);
    }
    const grant = await getJson<GrantRecord>(ctx, key(ctx, KEYS.grant, [grantId]));
    const request = {
      actor: { id: actorId, organizationId: actorOrganizationId },
      patientId,
      action: 'READ' as const,
      purpose: 'TREATMENT' as const,
      at: now,
    };
    if (!grant || !grantApplies(grant, request)) {
      throw new ChaincodeError(
        'FORBIDDEN',
        `grant ${grantId} does not let ${actorId} read patient ${patientId}'s records for treatment`,
      );
    }
    // As the policy decision point: a signed-only patient's unsigned grants (from before they
    // turned it on) stand on the ledger but authorise nothing.
    if (!grant.patientSigned && (await loadKeyring(ctx, patientId)).requireSignedConsent) {
      throw new ChaincodeError(
        'FORBIDDEN',
        `patient ${patientId} accepts only grants they signed; grant ${grantId} is unsigned`,
      );
    }
    const entry: DecisionRecord = {
      id,
      patientId,
      deploymentId,
      modelHash,
      actorId,
      grantId,
      inputCommitment,
      output,
      txId: ctx.stub.getTxID(),
      decidedAt: now,
      recordedBy: caller(ctx),
    };
    await putJson(ctx, k, entry);
    emit(ctx, DECISION_EVENTS.recorded, entry);
    return JSON.stringify(entry);
  }

  /**
   * Records whether the patient allows AI decisions about them. RecordDecision refuses every
   * decision about a patient who refused, whatever the API's database says.
   */
  @Transaction()
  @Returns('string')
  async SetAiDecisions(ctx: Context, settingJson: string): Promise<string> {
    return recordChoice(
      ctx,
      settingJson,
      DECISION_KEYS.setting,
      DECISION_EVENTS.setting,
      'ai-decisions',
    );
  }

  /** The patient's AI-decisions setting (allowed, with no txId, when never set). */
  @Transaction(false)
  @Returns('string')
  async GetAiDecisions(ctx: Context, patientId: string): Promise<string> {
    return choiceAnswer(ctx, DECISION_KEYS.setting, patientId);
  }

  @Transaction(false)
  @Returns('string')
  async GetDecision(ctx: Context, decisionId: string): Promise<string> {
    const id = v.id(decisionId, 'decisionId');
    const entry = await getJson<DecisionRecord>(ctx, key(ctx, DECISION_KEYS.decision, [id]));
    if (!entry) throw new ChaincodeError('NOT_FOUND', `decision ${id} does not exist`);
    return JSON.stringify(entry);
  }
}
