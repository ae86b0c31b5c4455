// Deploying a completed run's final model for decisions, and the deployed models as one
// process holds them: loaded once and cached by model hash, after checking that the stored
// weights still hash to what the ledger recorded.
import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import type { ModelDeployment } from '@custodia/chaincode';
import { randomUUID } from 'node:crypto';
import { Actor, hasRole } from '../auth';
import { BadUserInputError, ForbiddenError, InternalError, NotFoundError } from '../common/errors';
import { Coordinator } from '../federated/coordinator/coordinator.service';
import { RunStatus } from '../federated/coordinator/run.model';
import { loadPredictiveModel, type PredictiveModel } from '../federated/model';
import { modelHash } from '../federated/provenance';
import { Ledger, LEDGER } from '../ledger';
import { metadataFor } from './decision-inputs';
import { DecisionRepository, DeploymentRow } from './decision-repository';
import { DeployedModelModel } from './decision.model';

/** Models kept loaded; deployments are few and each is a few hundred floats. */
const MODEL_CACHE = 64;

@Injectable()
export class Deployments implements OnModuleDestroy {
  private readonly loaded = new Map<string, Promise<PredictiveModel>>();

  constructor(
    private readonly repo: DecisionRepository,
    private readonly coordinator: Coordinator,
    @Inject(LEDGER) private readonly ledger: Ledger,
  ) {}

  async deploy(actor: Actor, runId: string): Promise<DeployedModelModel> {
    const run = await this.coordinator.get(runId);
    if (!run) throw new NotFoundError('No training run with that id.');
    const { weights, study } = await this.coordinator.latestModel(runId);
    if (study.ownerId !== actor.id && !hasRole(actor, 'ADMIN')) {
      throw new ForbiddenError(
        'Only the researcher who owns this study, or an administrator, can deploy its model.',
      );
    }
    if (run.status !== RunStatus.COMPLETED) {
      throw new BadUserInputError(
        `Only a COMPLETED run's model can be deployed; this run is ${run.status}.`,
        'runId',
      );
    }
    const existing = await this.repo.deploymentOfRun(runId);
    if (existing) return toModel(existing);
    const flat = toFloat32(weights);
    const hash = modelHash(flat);
    if (hash !== run.modelHash) {
      throw new InternalError(
        "The run's stored final model does not match its recorded hash; it was not deployed.",
      );
    }
    const metrics = await this.coordinator.metrics(runId);
    const last = metrics.find((m) => m.round === run.currentRound) ?? null;
    const metadata = metadataFor(study.model, study.features, study.label);
    const id = randomUUID();
    const { txId, result: onLedger } = await this.ledger.submit<ModelDeployment>(
      'decisions',
      'DeployModel',
      [
        JSON.stringify({
          id,
          runId,
          round: run.currentRound,
          modelHash: hash,
          features: study.features,
          label: study.label,
        }),
      ],
    );
    const row: DeploymentRow = {
      id,
      runId,
      studyId: study.id,
      round: run.currentRound,
      modelHash: hash,
      weights: Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength),
      metadata,
      auc: last?.auc ?? null,
      epsilon: last?.epsilon ?? null,
      deployedBy: actor.id,
      ledgerTxId: txId,
      deployedAt: new Date(onLedger.deployedAt),
    };
    await this.repo.insertDeployment(row);
    return toModel(row);
  }

  async list(): Promise<DeployedModelModel[]> {
    return (await this.repo.deployments()).map(toModel);
  }

  async require(id: string): Promise<DeploymentRow> {
    const deployment = await this.repo.deployment(id);
    if (!deployment) throw new NotFoundError('No deployed model with that id.');
    return deployment;
  }

  /**
   * The deployment's model, ready to answer. Weights that no longer hash to the deployed model
   * hash (altered in the database) are refused, never run.
   */
  model(deployment: DeploymentRow): Promise<PredictiveModel> {
    let model = this.loaded.get(deployment.modelHash);
    if (!model) {
      const flat = toFloat32(deployment.weights);
      if (modelHash(flat) !== deployment.modelHash) {
        return Promise.reject(
          new InternalError(
            `The stored weights of deployed model ${deployment.id} do not match its hash; it was not run.`,
          ),
        );
      }
      if (this.loaded.size >= MODEL_CACHE) this.evictOldest();
      const { preset, features } = deployment.metadata;
      model = loadPredictiveModel(preset, features.length, flat);
      this.loaded.set(deployment.modelHash, model);
      model.catch(() => this.loaded.delete(deployment.modelHash));
    }
    return model;
  }

  onModuleDestroy(): void {
    for (const model of this.loaded.values())
      void model.then(
        (m) => m.dispose(),
        () => null,
      );
    this.loaded.clear();
  }

  private evictOldest(): void {
    const [oldest] = this.loaded.keys();
    void this.loaded.get(oldest)!.then(
      (m) => m.dispose(),
      () => null,
    );
    this.loaded.delete(oldest);
  }
}

/** A copy, aligned for Float32Array whatever the Buffer's offset in its pool. */
function toFloat32(bytes: Buffer): Float32Array {
  const copy = new Uint8Array(bytes);
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

function toModel(d: DeploymentRow): DeployedModelModel {
  return {
    id: d.id,
    runId: d.runId,
    studyId: d.studyId,
    modelHash: d.modelHash,
    features: d.metadata.features.map((f) => f.code),
    label: d.metadata.label,
    auc: d.auc,
    epsilon: d.epsilon,
    deployedAt: d.deployedAt,
    ledgerTxId: d.ledgerTxId,
  };
}
