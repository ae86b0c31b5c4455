// Deploying a completed run's final model for decisions, and the deployed models as one
// process holds them: loaded once and cached by model hash, after checking that the stored
// weights still hash to what the ledger recorded.
import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import type { ModelDeployment } from '@custodia/chaincode';
import { createHash } from 'node:crypto';
import { Actor, hasRole } from '../auth';
import {
  BadUserInputError,
  ConflictError,
  ForbiddenError,
  InternalError,
  NotFoundError,
} from '../common/errors';
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
    // One id per run, so that a deployment the ledger holds but the database lost (a crash
    // between the two) is found again and adopted rather than refused as a second one.
    const id = deploymentIdOf(runId);
    const onLedger = await this.submitOrAdopt(id, {
      id,
      runId,
      round: run.currentRound,
      modelHash: hash,
      features: study.features,
      label: study.label,
    });
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
      ledgerTxId: onLedger.txId,
      deployedAt: new Date(onLedger.deployedAt),
    };
    await this.repo.insertDeployment(row);
    return toModel(row);
  }

  private async submitOrAdopt(
    id: string,
    terms: { runId: string; round: number; modelHash: string } & Record<string, unknown>,
  ): Promise<ModelDeployment> {
    try {
      return (
        await this.ledger.submit<ModelDeployment>('decisions', 'DeployModel', [
          JSON.stringify(terms),
        ])
      ).result;
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
      const held = await this.ledger
        .evaluate<ModelDeployment>('decisions', 'GetDeployment', [id])
        .catch(() => null);
      const same =
        held?.runId === terms.runId &&
        held.round === terms.round &&
        held.modelHash === terms.modelHash;
      if (!same) throw e;
      return held;
    }
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

/** A UUID (version 8, name-based) derived from the run's id. */
function deploymentIdOf(runId: string): string {
  const h = createHash('sha256').update(`custodia/deployment/v1|${runId}`).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
