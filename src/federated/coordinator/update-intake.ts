// Update intake: what a node's update must pass before it counts. Its manifest is signed by a
// registered node (ES256), names this run and open round, and matches the body's hash; the
// body has the model's shape and only finite values within ±MAX_UPDATE_WEIGHT; the node has
// no accepted update in the round yet; and every listed contributor holds an active TRAIN
// grant for the study. A rejected update is recorded with its reason (never naming a patient)
// and never dropped.
import { Injectable } from '@nestjs/common';
import { compactVerify, decodeJwt, importJWK } from 'jose';
import { createHash, randomUUID } from 'node:crypto';
import { PolicyDecisionPoint } from '../../consent';
import { parameterCount } from '../model/architecture';
import { BoundedMap } from '../../common/bounded-map';
import { ForbiddenError, NotFoundError } from '../../common/errors';
import { StudiesService } from '../studies/studies.service';
import type { StudyEntity, TrainingNodeEntity } from '../studies/study.entity';
import { IntakeContext, NodeMetrics, RunRepository } from './run-repository';
import { RunStatus, UpdateStatus } from './run.model';

const SHA256 = /^[0-9a-f]{64}$/;
const MAX_CONTRIBUTORS = 100_000;
const NODE_ID_IN_REASON = 64;
const NODE_KEYS = 1_000;
/** The most examples one update may claim: the numExamples column's range (int4). */
const MAX_EXAMPLES = 2 ** 31 - 1;
/**
 * No weight of a model trained here comes near this (features are standardised); an update
 * beyond it could only be meant to swamp the average (or overflow it), whatever its weight.
 */
export const MAX_UPDATE_WEIGHT = 1e6;

type NodeKey = Awaited<ReturnType<typeof importJWK>>;

export interface SubmissionResult {
  id: string;
  status: UpdateStatus;
  reason: string | null;
}

/** What a node signs (ES256, compact JWS) about the update body it sends. */
export interface Manifest {
  runId: string;
  round: number;
  nodeId: string;
  numExamples: number;
  contributors: string[];
  updateSha256: string;
  metrics?: NodeMetrics;
}

/** Why an update was refused; its message is the recorded reason. */
export class Rejection extends Error {}

/** A refusal because a contributor's consent ended: the node may train the round again. */
class ConsentRejection extends Rejection {}

@Injectable()
export class UpdateIntake {
  /** Imported node keys, by node id and key. */
  private readonly keys = new BoundedMap<string, Promise<NodeKey>>(NODE_KEYS);

  constructor(
    private readonly repo: RunRepository,
    private readonly pdp: PolicyDecisionPoint,
    private readonly studies: StudiesService,
  ) {}

  /**
   * Checks and records one update, accepted or rejected, with the study it is for. The run, the
   * node, the round's state and the node's earlier update are read in one query; a missing
   * run or study, or a round that never opened, is NOT_FOUND and records nothing.
   *
   * `from`: the node sending it (its token's subject), to whom the update is attributed,
   * accepted or rejected; its manifest must name that node and verify with its key. Without
   * it (an in-process caller), the manifest's node is believed only once its signature
   * verifies: a rejection is never recorded in the name of a node that did not sign it.
   * Nothing is recorded before `after` settles, and nothing at all if it fails.
   */
  async receive(
    runId: string,
    round: number,
    manifestJws: string | undefined,
    body: Buffer,
    options: { after?: Promise<unknown>; from?: string } = {},
  ): Promise<{ result: SubmissionResult; study: StudyEntity; consentEnded: boolean }> {
    const { after, from } = options;
    after?.catch(() => undefined); // awaited below, once the update is checked
    // Which node the manifest claims, read before it is verified (so that its key comes with
    // the run's row); a missing or undecodable manifest is rejected once the run is known.
    let claimedNode = 'unknown';
    let unreadable: Rejection | undefined;
    if (!manifestJws) unreadable = new Rejection('missing X-Custodia-Manifest header');
    else {
      try {
        claimedNode = String(decodeJwt(manifestJws).nodeId ?? 'unknown').slice(
          0,
          NODE_ID_IN_REASON,
        );
      } catch {
        unreadable = new Rejection('manifest is not a compact JWS');
      }
    }
    const context = await this.repo.intakeContext(runId, round, from ?? claimedNode);
    if (!context) throw new NotFoundError('No training run with that id.');
    // A sender that is no registered node (or a revoked one) has nothing to be recorded for.
    if (from !== undefined && (!context.node || context.node.revokedAt)) {
      throw new ForbiddenError('This token names no registered training node.');
    }
    if (!context.roundExists) {
      throw new NotFoundError(`Round ${round} of this training run has not opened.`);
    }
    const study = await this.studies.get(context.run.studyId);
    if (!study) throw new NotFoundError('No study with that id.');
    let manifest: Manifest | undefined;
    let outcome: { grantIds: string[] } | Rejection;
    try {
      if (unreadable) throw unreadable;
      if (from !== undefined && claimedNode !== from) {
        throw new Rejection('manifest names another node than the one sending it');
      }
      manifest = await this.verifiedManifest(manifestJws!, context.node);
      this.check(context, study, round, manifest, body);
      const [grantIds, foreign] = await Promise.all([
        this.trainingGrants(study.id, manifest.contributors, manifest.nodeId),
        this.repo.patientsOfOtherOrganizations(manifest.contributors, context.node!.organizationId),
      ]);
      // A node trains on its own organisation's patients: listing others' would put them in
      // the round's provenance though no node of theirs read their records or logged the use.
      if (foreign) {
        throw new Rejection(
          `${foreign} of ${manifest.contributors.length} contributors are patients of another organisation than the node's`,
        );
      }
      outcome = { grantIds };
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      outcome = e;
    }
    await after;
    try {
      if (outcome instanceof Rejection) throw outcome;
      const result = await this.accept(runId, round, manifest!, body, outcome.grantIds);
      return { result, study, consentEnded: false };
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      const id = randomUUID();
      await this.repo.insertRejected({
        id,
        runId,
        round,
        // The sender, or the node whose signature verified; no one else.
        nodeId: from ?? manifest?.nodeId ?? 'unknown',
        status: UpdateStatus.REJECTED,
        reason: e.message,
        // A verified manifest's count is in the column's range (verifiedManifest checks it).
        numExamples: manifest?.numExamples ?? 0,
        updateSha256: manifest?.updateSha256 ?? null,
      });
      return {
        result: { id, status: UpdateStatus.REJECTED, reason: e.message },
        study,
        consentEnded: e instanceof ConsentRejection,
      };
    }
  }

  private async verifiedManifest(jws: string, node: TrainingNodeEntity | null): Promise<Manifest> {
    if (!node || node.revokedAt) throw new Rejection('node is not registered');
    let payload: Uint8Array;
    try {
      const key = await this.publicKey(node);
      ({ payload } = await compactVerify(jws, key, { algorithms: ['ES256'] }));
    } catch {
      throw new Rejection('manifest signature does not verify with the node key');
    }
    // decodeJwt already parsed this payload as a JSON object.
    const m = JSON.parse(Buffer.from(payload).toString('utf8')) as Manifest;
    const ok =
      typeof m.runId === 'string' &&
      Number.isInteger(m.round) &&
      m.nodeId === node.id &&
      Number.isSafeInteger(m.numExamples) &&
      m.numExamples >= 1 &&
      m.numExamples <= MAX_EXAMPLES &&
      Array.isArray(m.contributors) &&
      m.contributors.length >= 1 &&
      m.contributors.length <= MAX_CONTRIBUTORS &&
      m.contributors.every((c) => typeof c === 'string') &&
      typeof m.updateSha256 === 'string' &&
      SHA256.test(m.updateSha256);
    if (!ok) throw new Rejection('manifest is malformed');
    return m;
  }

  /** A node's public key, imported once per key (its row is still read, revocation and all). */
  private publicKey(node: TrainingNodeEntity): Promise<NodeKey> {
    const { kty, crv, x, y } = node.publicKey;
    const id = JSON.stringify([node.id, kty, crv, x, y]);
    let key = this.keys.get(id);
    if (!key) {
      key = importJWK({ ...node.publicKey }, 'ES256');
      key.catch(() => this.keys.delete(id));
      this.keys.set(id, key);
    }
    return key;
  }

  private check(
    context: IntakeContext,
    study: StudyEntity,
    round: number,
    m: Manifest,
    body: Buffer,
  ): void {
    if (m.runId !== context.run.id || m.round !== round) {
      throw new Rejection('manifest names another run or round');
    }
    if (context.run.status !== RunStatus.RUNNING || !context.open) {
      throw new Rejection('round is not open');
    }
    // One example per patient: a count beyond the contributors would outweigh the others.
    if (m.numExamples > m.contributors.length) {
      throw new Rejection(
        `manifest claims ${m.numExamples} examples from ${m.contributors.length} contributors (one example per patient)`,
      );
    }
    if (new Set(m.contributors).size !== m.contributors.length) {
      throw new Rejection('manifest lists a contributor more than once');
    }
    if (createHash('sha256').update(body).digest('hex') !== m.updateSha256) {
      throw new Rejection('body does not match its hash');
    }
    if (body.length !== 4 * parameterCount(study.model, study.features.length)) {
      throw new Rejection('update has the wrong shape for this model');
    }
    const values = new Float32Array(body.buffer, body.byteOffset, body.length / 4);
    // One pass: NaN fails both comparisons, as ±Infinity fails one.
    const outside = values.findIndex((v) => !(v <= MAX_UPDATE_WEIGHT && v >= -MAX_UPDATE_WEIGHT));
    if (outside >= 0) {
      throw new Rejection(
        Number.isFinite(values[outside])
          ? `update holds weights beyond ±${MAX_UPDATE_WEIGHT.toExponential()}, which no model trained here reaches`
          : 'update holds non-finite values',
      );
    }
    // A concurrent duplicate that passes here is caught by the unique index on insert.
    if (context.accepted) throw duplicate();
  }

  /** The grant under which each contributor may be trained on; rejects if any has none. */
  private async trainingGrants(
    studyId: string,
    contributors: string[],
    nodeId: string,
  ): Promise<string[]> {
    const grants = await this.pdp.trainingGrants(studyId, contributors, nodeId);
    // Researchers and nodes read reasons: count the contributors, never name them.
    const missing = contributors.filter((c) => !grants.has(c)).length;
    if (missing) {
      throw new ConsentRejection(
        `${missing} of ${contributors.length} contributors hold no active TRAIN consent for this study`,
      );
    }
    return contributors.map((c) => grants.get(c)!);
  }

  private async accept(
    runId: string,
    round: number,
    m: Manifest,
    body: Buffer,
    grantIds: string[],
  ): Promise<SubmissionResult> {
    const id = randomUUID();
    // Accepted updates of a round are stored one at a time under its row lock, so a node's
    // second one is seen ('duplicate'), not left to the unique index to refuse.
    const stored = await this.repo.insertAccepted({
      id,
      runId,
      round,
      nodeId: m.nodeId,
      status: UpdateStatus.ACCEPTED,
      reason: null,
      numExamples: m.numExamples,
      updateSha256: m.updateSha256,
      contributors: m.contributors,
      grantIds,
      metrics: cleanMetrics(m.metrics),
      body,
    });
    // The round closed since it was checked (its closing had begun, or it ended meanwhile).
    if (stored === 'closed') throw new Rejection('round is not open');
    if (stored === 'duplicate') throw duplicate();
    // Counted, never named: researchers and nodes read reasons.
    if (typeof stored === 'number') {
      throw new Rejection(
        `${stored} of ${m.contributors.length} contributors are already counted in this round by another node's update (a patient weighs once)`,
      );
    }
    return { id, status: UpdateStatus.ACCEPTED, reason: null };
  }
}

function duplicate(): Rejection {
  return new Rejection('duplicate: this node already has an accepted update this round');
}

/**
 * The most a node's reported loss may be: a mean binary log loss of float32 scores stays below
 * about 104 (−ln of the smallest float32); far above it, it is no loss but an attempt to swamp
 * the round's example-weighted mean (or overflow it to Infinity, which reads back as null).
 */
const MAX_LOSS = 1000;

/** What a node's self-reported metrics may be: AUC and accuracy in [0, 1], a loss in [0, MAX_LOSS]. */
const METRIC_RANGES = { loss: MAX_LOSS, accuracy: 1, auc: 1 } as const;

/** Only metrics within their ranges survive from a node's self-report; the rest are dropped. */
function cleanMetrics(m: Manifest['metrics']): NodeMetrics {
  const out: NodeMetrics = {};
  for (const k of ['loss', 'accuracy', 'auc'] as const) {
    const v = m?.[k];
    if (typeof v === 'number' && v >= 0 && v <= METRIC_RANGES[k]) out[k] = v;
  }
  return out;
}
