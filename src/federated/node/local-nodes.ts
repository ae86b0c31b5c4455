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
import { TrainingThread } from '../model/training-thread';
import { StudiesService } from '../studies/studies.service';
import { StudyEntity, TrainingNodeEntity } from '../studies/study.entity';
import { floats, SigningKey, trainAndSign, TrainingExample, TrainingExamples } from './node-work';

interface LocalNode {
  id: string;
  organizationId: string;
  key: SigningKey;
}

@Injectable()
export class LocalTrainingNodes implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LocalTrainingNodes.name);
  private readonly working = new Set<Promise<void>>();
  /** `runId/round/nodeId` of the nodes training now: a round reopened meanwhile skips them. */
  private readonly training = new Set<string>();
  /** Emits 'update' with the time each node spent reading, fetching, training, submitting. */
  readonly events = new EventEmitter();
  private stopped = false;
  /** Each organisation's node, by organisation id. */
  private readonly known = new Map<string, Promise<LocalNode>>();
  /** Each node's examples per study, rebuilt only for patients whose records changed. */
  readonly examples: TrainingExamples;
  /** The nodes train on a thread of their own, beside the API's. */
  private readonly trainer = new TrainingThread();
  /**
   * `runId/round` asked to be trained (opened again) while some of its nodes were still
   * training it: trained again once they are done, for the nodes still without an accepted
   * update. A reopening is never lost to a node being busy.
   */
  private readonly again = new Set<string>();
  private readonly onOpen = (e: RoundOpened) =>
    this.track(this.trainRound(e.runId, e.round, e.studyId, e.clientConfig));

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @InjectConfig() private readonly config: AppConfig,
    private readonly coordinator: Coordinator,
    pdp: PolicyDecisionPoint,
    records: RecordsService,
    private readonly studies: StudiesService,
  ) {
    this.examples = new TrainingExamples(pdp, records);
  }

  get enabled(): boolean {
    return this.config.trainingNodes;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    this.coordinator.events.on('open', this.onOpen);
    this.coordinator.events.on('reopen', this.onOpen);
    // Rounds opened before a restart are trained on now.
    for (const r of await this.coordinator.openRounds()) this.onOpen(r);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.coordinator.events.off('open', this.onOpen);
    this.coordinator.events.off('reopen', this.onOpen);
    await Promise.allSettled([...this.working]);
    await this.trainer.close();
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((e: Error) =>
      this.logger.warn({ errorType: e.name }, 'a local node could not train this round'),
    );
    this.working.add(tracked);
    void tracked.finally(() => this.working.delete(tracked));
  }

  /**
   * Every node's round. The nodes' selections and reads run one after another from the start;
   * each node's training is handed to the training thread as soon as its examples are ready,
   * so that the thread trains one node after another without waiting for this one, while this
   * thread reads the next node's examples and submits the updates already trained. The
   * round's global model is fetched once for all of them. A node that fails does not stop
   * the others; the round's work then fails with the first error, once all are settled.
   */
  private async trainRound(
    runId: string,
    round: number,
    studyId: string,
    clientConfig: Record<string, number>,
  ): Promise<void> {
    const study = await this.studies.get(studyId);
    if (!study) return;
    const [nodes, submitted] = await Promise.all([
      this.nodes(),
      this.coordinator.submittedNodes(runId, round),
    ]);
    // The largest sites (by their last round) read first: see TrainingExamples.knownPatients.
    const busy = (n: LocalNode) => this.training.has(`${runId}/${round}/${n.id}`);
    if (nodes.some(busy)) this.again.add(`${runId}/${round}`);
    const due = nodes
      .filter((n) => !submitted.has(n.id) && !busy(n))
      .map((n) => ({ n, known: this.examples.knownPatients(n.id, study) }))
      .sort((a, b) => b.known - a.known)
      .map(({ n }) => n);
    if (due.length === 0) return;
    const keys = due.map((n) => `${runId}/${round}/${n.id}`);
    for (const k of keys) this.training.add(k);
    try {
      await this.trainNodes(due, runId, round, study, clientConfig);
    } finally {
      for (const k of keys) this.training.delete(k);
    }
    if (this.again.delete(`${runId}/${round}`) && !this.stopped) {
      await this.trainRound(runId, round, studyId, clientConfig);
    }
  }

  private async trainNodes(
    due: LocalNode[],
    runId: string,
    round: number,
    study: StudyEntity,
    clientConfig: Record<string, number>,
  ): Promise<void> {
    const model = this.coordinator.roundModel(runId, round).then(floats);
    // Settled here too: when no node has examples, nothing else awaits it.
    model.catch(() => undefined);
    // Whom each node may train on, asked for every node at once: two queries each, where
    // asking one node after another took a round of ten nodes 65 ms before any could train.
    const eligibility = due.map((node) => {
      const asked = this.examples.eligible(node.organizationId, study, node.id);
      asked.catch(() => undefined); // awaited by the node's read below
      return asked;
    });
    // Then one read at a time (a first round's decrypts a cohort's records, and several at once
    // would queue for the connection pool), each running ahead of the training. The logging of
    // the examples' use begins once every node has read: a large site's events would otherwise
    // hold this thread and the database while the smaller sites wait to read and train.
    let previous: Promise<unknown> = Promise.resolve();
    let allRead!: () => void;
    const logAfter = new Promise<void>((resolve) => (allRead = resolve));
    const reads: Promise<unknown>[] = [];
    const work = due.map((node, i) => {
      const read = previous.then(async () => {
        const started = performance.now();
        const { examples, logged } = await this.examples.select(
          node.organizationId,
          study,
          node.id,
          { runId, round },
          logAfter,
          eligibility[i],
        );
        return { list: examples, logged, readMs: performance.now() - started };
      });
      previous = read.catch(() => undefined);
      reads.push(previous);
      return read.then(async ({ list, logged, readMs }) => {
        if (this.stopped || list.length === 0) return logged;
        const fetched = performance.now();
        const global = await model;
        const submit = await this.trainAs(node, runId, round, study, clientConfig, {
          examples: list,
          logged,
          global,
          readMs,
          transferMs: performance.now() - fetched,
        });
        return submit ?? undefined;
      });
    });
    void Promise.all(reads).then(allRead);
    await Promise.allSettled(work);
    await Promise.all(work);
  }

  /**
   * Trains one node's update; the promise of its submission, or null when it has none. The
   * update goes to the coordinator as soon as it is trained, so that its checks run while the
   * examples' use is still being logged; the coordinator stores it only once the log holds
   * them (`after`), and nothing of it if the logging fails.
   */
  private async trainAs(
    node: LocalNode,
    runId: string,
    round: number,
    study: StudyEntity,
    clientConfig: Record<string, number>,
    input: {
      examples: TrainingExample[];
      /** The logging of the examples' use (the coordinator stores nothing before it is done). */
      logged: Promise<void>;
      global: Float32Array;
      readMs: number;
      transferMs: number;
    },
  ): Promise<Promise<void> | null> {
    const started = performance.now();
    const update = await trainAndSign({
      study,
      runId,
      round,
      nodeId: node.id,
      key: node.key,
      examples: input.examples,
      global: input.global,
      clientConfig,
      trainer: this.trainer,
    });
    if (!update) {
      await input.logged;
      return null;
    }
    const trained = performance.now();
    const submitted = this.coordinator.submit(runId, round, update.manifest, update.body, {
      after: input.logged,
      from: node.id,
    });
    return submitted.then((outcome) => {
      // Where a round's time goes, for bench:fl-round (submitting includes any aggregation).
      this.events.emit('update', {
        runId,
        round,
        nodeId: node.id,
        readMs: input.readMs,
        transferMs: input.transferMs,
        // Training and signing; submitting then waits for the log to hold the examples' use.
        trainMs: trained - started,
        submitMs: performance.now() - trained,
        status: outcome.status,
      });
      if (outcome.reason) {
        this.logger.warn(
          { runId, round, nodeId: node.id, reason: outcome.reason },
          'update rejected',
        );
      }
    });
  }

  /** One node per organisation, created (key and registration) on first use. */
  private async nodes(): Promise<LocalNode[]> {
    const orgs: { id: string }[] = await this.db.query(`SELECT id FROM organizations ORDER BY id`);
    return Promise.all(orgs.map((org) => this.nodeOf(org.id)));
  }

  /** A node's key and registration, read (and written on first use) once per process. */
  private nodeOf(organizationId: string): Promise<LocalNode> {
    let node = this.known.get(organizationId);
    if (!node) {
      node = this.loadNode(organizationId);
      node.catch(() => this.known.delete(organizationId));
      this.known.set(organizationId, node);
    }
    return node;
  }

  private async loadNode(organizationId: string): Promise<LocalNode> {
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
