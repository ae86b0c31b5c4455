// Embedded mode's training nodes: one per organisation, in-process. Each holds its own ES256
// key (in the data dir, mode 0600) and is registered like any node. When a round opens, each
// node selects its organisation's patients with an active TRAIN grant for the study, builds
// their examples from their decrypted records (the read is in each patient's access log),
// trains from the round's global model, evaluates on a held-out fifth, and submits the update
// with a signed manifest — through the same checks as a remote node's.
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { PolicyDecisionPoint } from '../../consent';
import { AppConfig, InjectConfig } from '../../config';
import { RecordsService } from '../../records';
import type { RoundOpened } from '../coordinator/coordinator-events';
import { Coordinator } from '../coordinator/coordinator.service';
import { RunRepository } from '../coordinator/run-repository';
import { StudyEntity, TrainingNodeEntity } from '../studies/study.entity';
import { floats, prepareUpdate, SigningKey, TrainingExamples } from './node-work';

interface LocalNode {
  id: string;
  organizationId: string;
  key: SigningKey;
}

@Injectable()
export class LocalTrainingNodes implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LocalTrainingNodes.name);
  private readonly working = new Set<Promise<void>>();
  /** Emits 'update' with the time each node spent reading, fetching, training, submitting. */
  readonly events = new EventEmitter();
  private stopped = false;
  /** Each node's examples per study, rebuilt only for patients whose records changed. */
  readonly examples: TrainingExamples;
  private readonly onOpen = (e: RoundOpened) =>
    this.track(this.trainRound(e.runId, e.round, e.studyId, e.clientConfig));

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @InjectConfig() private readonly config: AppConfig,
    private readonly coordinator: Coordinator,
    pdp: PolicyDecisionPoint,
    records: RecordsService,
    private readonly repo: RunRepository,
  ) {
    this.examples = new TrainingExamples(db, pdp, records);
  }

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

  private async trainRound(
    runId: string,
    round: number,
    studyId: string,
    clientConfig: Record<string, number>,
  ): Promise<void> {
    const study = await this.repo.study(studyId);
    if (!study) return;
    for (const node of await this.nodes()) {
      if (this.stopped) return;
      if (await this.coordinator.hasSubmitted(runId, round, node.id)) continue;
      await this.trainAs(node, runId, round, study, clientConfig);
    }
  }

  private async trainAs(
    node: LocalNode,
    runId: string,
    round: number,
    study: StudyEntity,
    clientConfig: Record<string, number>,
  ) {
    const started = performance.now();
    const examples = await this.examples.forRound(node.organizationId, study, node.id);
    if (examples.length === 0) return;
    const read = performance.now();
    const global = floats(await this.coordinator.roundModel(runId, round));
    const fetched = performance.now();
    const update = await prepareUpdate({
      study,
      runId,
      round,
      nodeId: node.id,
      key: node.key,
      examples,
      global,
      clientConfig,
    });
    if (!update) return;
    const trained = performance.now();
    const outcome = await this.coordinator.submit(runId, round, update.manifest, update.body);
    // Where a round's time goes, for bench:fl-round (submitting includes any aggregation).
    this.events.emit('update', {
      runId,
      round,
      nodeId: node.id,
      readMs: read - started,
      transferMs: fetched - read,
      trainMs: trained - fetched,
      submitMs: performance.now() - trained,
      status: outcome.status,
    });
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
