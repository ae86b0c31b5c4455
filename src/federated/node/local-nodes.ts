// Embedded mode's training nodes: one per organisation, in-process. Each holds its own ES256
// key (in the data dir, mode 0600) and is registered like any node. When a round opens, each
// node selects its organisation's patients with an active TRAIN grant for the study, builds
// their examples from their decrypted records (the read is in each patient's access log),
// trains from the round's global model, evaluates on a held-out fifth, and submits the update
// with a signed manifest — through the same checks as a remote node's.
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  calculateJwkThumbprint,
  CompactSign,
  exportJWK,
  generateKeyPair,
  importJWK,
  JWK,
} from 'jose';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { PolicyDecisionPoint } from '../../consent';
import { AppConfig, InjectConfig } from '../../config';
import { RecordsService } from '../../records';
import type { FhirResource } from '../../records/fhir';
import { Coordinator } from '../coordinator/coordinator.service';
import { buildExample, evaluate, Examples, trainLocal } from '../model';
import { DEFAULT_MU } from '../strategies';
import { StudyEntity, TrainingNodeEntity } from '../studies/study.entity';

type SigningKey = Parameters<CompactSign['sign']>[0];

interface LocalNode {
  id: string;
  organizationId: string;
  key: SigningKey;
}

/** The instant examples describe: fixed, so a patient's example does not drift with time. */
const EXAMPLES_AS_OF = '2025-01-01T00:00:00Z';

@Injectable()
export class LocalTrainingNodes implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LocalTrainingNodes.name);
  private readonly working = new Set<Promise<void>>();
  private stopped = false;
  private readonly onOpen = (e: { runId: string; round: number; studyId: string }) =>
    this.track(this.trainRound(e.runId, e.round, e.studyId));

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @InjectConfig() private readonly config: AppConfig,
    private readonly coordinator: Coordinator,
    private readonly pdp: PolicyDecisionPoint,
    private readonly records: RecordsService,
  ) {}

  get enabled(): boolean {
    return this.config.trainingNodes;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    this.coordinator.events.on('open', this.onOpen);
    // Rounds opened before a restart are trained on now.
    for (const r of await this.coordinator.openRounds()) this.onOpen(r);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.coordinator.events.off('open', this.onOpen);
    await Promise.allSettled([...this.working]);
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((e: Error) =>
      this.logger.warn({ errorType: e.name }, 'a local node could not train this round'),
    );
    this.working.add(tracked);
    void tracked.finally(() => this.working.delete(tracked));
  }

  private async trainRound(runId: string, round: number, studyId: string): Promise<void> {
    const study = await this.db.getRepository(StudyEntity).findOneByOrFail({ id: studyId });
    for (const node of await this.nodes()) {
      if (this.stopped) return;
      if (await this.coordinator.hasSubmitted(runId, round, node.id)) continue;
      await this.trainAs(node, runId, round, study);
    }
  }

  private async trainAs(node: LocalNode, runId: string, round: number, study: StudyEntity) {
    const patients: { id: string }[] = await this.db.query(
      `SELECT id FROM patients WHERE organization_id = $1 AND erased_at IS NULL ORDER BY id`,
      [node.organizationId],
    );
    const grants = await this.pdp.trainingGrants(
      study.id,
      patients.map((p) => p.id),
      node.id,
    );
    if (grants.size === 0) return;
    const resources = await this.records.resourcesForTraining(node.id, grants);
    const definition = { features: study.features, label: study.label, asOf: EXAMPLES_AS_OF };
    const train: Examples & { ids: string[] } = { x: [], y: [], ids: [] };
    const heldOut: Examples = { x: [], y: [] };
    for (const [patientId, list] of resources) {
      const example = buildExample(list as FhirResource[], definition);
      if (!example.included) continue;
      // A fixed fifth of the patients (by id) is held out for evaluation.
      const part = heldOutOf(patientId) ? heldOut : train;
      part.x.push(example.x);
      part.y.push(example.y);
      if (part === train) train.ids.push(patientId);
    }
    if (train.ids.length === 0) return;
    const global = await this.coordinator.roundModel(runId, round);
    const result = await trainLocal({
      preset: study.model,
      features: study.features,
      examples: train,
      epochs: study.localEpochs,
      batchSize: study.batchSize,
      learningRate: study.learningRate,
      seed: seedOf(`${runId}/${round}/${node.id}`),
      globalWeights: new Float32Array(
        global.buffer.slice(global.byteOffset, global.byteOffset + global.byteLength),
      ),
      mu: study.strategy === 'FEDPROX' ? DEFAULT_MU : 0,
    });
    const metrics: Record<string, number> = {};
    if (heldOut.y.length > 0) {
      const e = await evaluate(study.model, result.weights, heldOut);
      for (const [k, v] of Object.entries(e)) if (Number.isFinite(v)) metrics[k] = v;
    }
    const body = Buffer.from(
      result.weights.buffer,
      result.weights.byteOffset,
      result.weights.byteLength,
    );
    const manifest = {
      runId,
      round,
      nodeId: node.id,
      numExamples: result.numExamples,
      contributors: train.ids,
      updateSha256: createHash('sha256').update(body).digest('hex'),
      metrics,
    };
    const jws = await new CompactSign(Buffer.from(JSON.stringify(manifest)))
      .setProtectedHeader({ alg: 'ES256' })
      .sign(node.key);
    const outcome = await this.coordinator.submit(runId, round, jws, body);
    if (outcome.reason) {
      this.logger.warn(
        { runId, round, nodeId: node.id, reason: outcome.reason },
        'update rejected',
      );
    }
  }

  /** One node per organisation, created (key and registration) on first use. */
  private async nodes(): Promise<LocalNode[]> {
    const orgs: { id: string }[] = await this.db.query(`SELECT id FROM organizations ORDER BY id`);
    const out: LocalNode[] = [];
    for (const org of orgs) out.push(await this.nodeOf(org.id));
    return out;
  }

  private async nodeOf(organizationId: string): Promise<LocalNode> {
    const dir = join(this.config.dataDir, 'nodes');
    const file = join(dir, `${organizationId}.json`);
    if (!existsSync(file)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      const stored = { nodeId: randomUUID(), jwk: await exportJWK(privateKey) };
      await writeFile(file, JSON.stringify(stored) + '\n', { mode: 0o600, flag: 'wx' }).catch(
        (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        },
      );
      await chmod(file, 0o600);
    }
    const { nodeId, jwk } = JSON.parse(await readFile(file, 'utf8')) as {
      nodeId: string;
      jwk: JWK;
    };
    const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    await this.db
      .createQueryBuilder()
      .insert()
      .into(TrainingNodeEntity)
      .values({
        id: nodeId,
        organizationId,
        name: `${organizationId} (in-process)`,
        publicKey: publicJwk,
        keyThumbprint: await calculateJwkThumbprint(publicJwk, 'sha256'),
        registeredBy: 'custodia:embedded',
        createdAt: new Date(),
        revokedAt: null,
      })
      .orIgnore()
      .execute();
    return { id: nodeId, organizationId, key: (await importJWK(jwk, 'ES256')) as SigningKey };
  }
}

/** A fixed fifth of the patients (by a hash of their id), held out for evaluation. */
export function heldOutOf(patientId: string): boolean {
  return createHash('sha256').update(patientId).digest()[0] % 5 === 0;
}

function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0) & 0x7fffffff;
}
