// What every training node does for a round, in-process or remote: select its organisation's
// patients that may be trained on, read their records, build examples, train from the round's
// global model, evaluate on a held-out fifth, and sign the manifest of the update.
import { recordAllowed, type ConsentGrant, type RecordFacts } from '@custodia/chaincode/policy';
import { CompactSign } from 'jose';
import { hash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PolicyDecisionPoint } from '../../consent';
import { RecordsService } from '../../records';
import type { TrainingRecords } from '../../records/records.service';
import type { FhirResource } from '../../records/fhir';
import type { ModelPreset } from '../model/architecture';
import { BoundedMap } from '../../common/bounded-map';
import { buildExample } from '../model/features';
import type { Examples } from '../model/train';
import { trainingHere, type Trainer } from '../model/training-thread';

export type SigningKey = Parameters<CompactSign['sign']>[0];

/** The study settings a node trains by (as the Study type and entity both carry them). */
export interface StudySettings {
  id: string;
  model: ModelPreset;
  features: string[];
  label: string;
  strategy: string;
  localEpochs: number;
  batchSize: number;
  learningRate: number;
}

export interface PreparedUpdate {
  body: Buffer;
  manifest: string;
}

/** The instant examples describe: fixed, so a patient's example does not drift with time. */
const EXAMPLES_AS_OF = '2025-01-01T00:00:00Z';

/** Below this many complete examples a node evaluates on none: a handful says nothing. */
export const MIN_EXAMPLES_FOR_EVALUATION = 10;

/**
 * The patients a node holds out for evaluation: a fixed fifth of them (by a hash of their
 * id), once it has enough examples for a held-out set to mean anything.
 */
export function heldOutSet(patientIds: readonly string[]): Set<string> {
  if (patientIds.length < MIN_EXAMPLES_FOR_EVALUATION) return new Set();
  return new Set(patientIds.filter(heldOut));
}

/** Whether a patient is in the held-out fifth, remembered: a node asks every round. */
const heldOutMemo = new BoundedMap<string, boolean>(100_000);
function heldOut(id: string): boolean {
  let held = heldOutMemo.get(id);
  if (held === undefined) {
    held = hash('sha256', id, 'buffer')[0] % 5 === 0;
    heldOutMemo.set(id, held);
  }
  return held;
}

function seedOf(text: string): number {
  return hash('sha256', text, 'buffer').readUInt32LE(0) & 0x7fffffff;
}

/** One patient's complete example for a study. */
export interface TrainingExample {
  id: string;
  x: number[];
  y: number;
}

interface CachedPatient {
  fingerprint: string;
  /** The ids of the grants it was built under: another set of grants, another scope. */
  scope: string;
  /** The records read, each under the first of those grants (by id) that admits it. */
  uses: { grantId: string; recordIds: string[] }[];
  /** Null when the patient's records make no complete example for the study. */
  example: TrainingExample | null;
}

const CACHED_STUDIES = 16;

/** Who a node may train on in a round (TrainingExamples.eligible). */
export interface Eligibility {
  /** The organisation's patients, each with their records' fingerprint. */
  members: Map<string, string>;
  /**
   * Of those, each patient with an active TRAIN grant for the study, with every such grant
   * (by id): their record filters say which of the patient's records may be learnt from.
   */
  grants: Map<string, ConsentGrant[]>;
}

/**
 * A node's examples for a study, round after round. The patients of its organisation with an
 * active TRAIN grant are selected every round (so a revocation or an erasure takes effect
 * from the next round), but a patient's records are read, decrypted and turned into an
 * example again only when they changed (a new, amended or erased record changes their
 * fingerprint). Every round logs each patient's use in their access log, as reading did.
 * Patients no longer selected are dropped from memory at once.
 */
export class TrainingExamples {
  /** Off: every round reads and decrypts every record again (the benchmark's baseline). */
  cache = true;
  private readonly studies = new BoundedMap<string, Map<string, CachedPatient>>(CACHED_STUDIES);

  constructor(
    private readonly pdp: PolicyDecisionPoint,
    private readonly records: RecordsService,
  ) {}

  /**
   * How many patients this node's last selection for the study held (0 before its first), to
   * read the largest sites first: theirs is the longest road to a submitted update (logging
   * every patient's use, then training on them), and the small sites' reads fit beside it.
   */
  knownPatients(nodeId: string, study: Pick<StudySettings, 'id' | 'features' | 'label'>): number {
    return this.studies.get(studyKey(nodeId, study))?.size ?? 0;
  }

  /**
   * The organisation's patients with their records' fingerprints, and the grant under which
   * the node may train on each of them now: two queries, and nothing read or decrypted. A
   * round asks it of all its nodes at once (their reads then follow one by one).
   */
  async eligible(
    organizationId: string,
    study: Pick<StudySettings, 'id'>,
    nodeId: string,
  ): Promise<Eligibility> {
    const members = await this.records.trainingFingerprints(organizationId);
    const grants = members.size
      ? await this.pdp.trainingScopes(study.id, [...members.keys()], nodeId)
      : new Map<string, ConsentGrant[]>();
    return { members, grants };
  }

  /**
   * The complete examples this node may train on for the study in this round of the run, as
   * soon as they are ready, with the logging of their use (each patient's access log says
   * which run and round used their records) still under way in `logged`: a node trains
   * meanwhile, and nothing learnt from them leaves it before `logged` settles. The logging
   * begins once `logAfter` settles (by default on the next turn of the event loop).
   * `eligibility`: what `eligible` answered for this node this round, if asked already.
   */
  async select(
    organizationId: string,
    study: Pick<StudySettings, 'id' | 'features' | 'label'>,
    nodeId: string,
    at: { runId: string; round: number },
    logAfter: PromiseLike<unknown> = nextTurn(),
    eligibility?: Promise<Eligibility>,
  ): Promise<{ examples: TrainingExample[]; logged: Promise<void> }> {
    const { members, grants } = await (eligibility ?? this.eligible(organizationId, study, nodeId));
    const key = studyKey(nodeId, study);
    const known = (this.cache && this.studies.get(key)) || new Map<string, CachedPatient>();
    for (const id of known.keys()) if (!grants.has(id)) known.delete(id);
    const scopeOf = (id: string) =>
      grants
        .get(id)!
        .map((g) => g.id)
        .join(',');
    const stale = [...grants.keys()].filter((id) => {
      const cached = known.get(id);
      return !cached || cached.fingerprint !== members.get(id) || cached.scope !== scopeOf(id);
    });
    // Only what the patient's TRAIN grants admit (their types, categories, restricted) is
    // read: the others are kept back by their labels, never decrypted.
    const permitting = (id: string, facts: RecordFacts) =>
      grants.get(id)!.find((g) => recordAllowed(g, facts));
    const opened = stale.length
      ? await this.records.openForTraining(stale, (id, facts) => !!permitting(id, facts))
      : new Map<string, TrainingRecords>();
    const definition = { features: study.features, label: study.label, asOf: EXAMPLES_AS_OF };
    for (const id of stale) {
      const { recordIds = [], resources = [], facts = [], withheld = [] } = opened.get(id) ?? {};
      const uses = new Map<string, string[]>();
      recordIds.forEach((recordId, i) => {
        const grantId = permitting(id, facts[i])!.id;
        const ids = uses.get(grantId);
        if (ids) ids.push(recordId);
        else uses.set(grantId, [recordId]);
      });
      const built = buildExample(resources as FhirResource[], definition);
      // The label is whether a Condition says so: with one of theirs kept back, a patient's
      // label is unknown (a 0 might be a withheld 1), so they make no example.
      const labelHidden = withheld.some((f) => f.resourceType === 'Condition');
      known.set(id, {
        fingerprint: members.get(id)!,
        scope: scopeOf(id),
        uses: [...uses].map(([grantId, ids]) => ({ grantId, recordIds: ids })),
        example: built.included && !labelHidden ? { id, x: built.x, y: built.y } : null,
      });
    }
    if (this.cache) this.studies.set(key, known);
    const used = [...known].filter(([, p]) => p.uses.length > 0).sort(byId);
    const uses = used.flatMap(([patientId, p]) =>
      p.uses.map(({ grantId, recordIds }) => ({ patientId, recordIds, grantId })),
    );
    // Begun later (`logAfter`): sealing and chaining a large site's events takes the thread for
    // a while, and the caller hands the examples to training first.
    const logged = Promise.resolve(logAfter).then(() =>
      this.records.logTrainingUse(
        nodeId,
        { studyId: study.id, runId: at.runId, round: at.round },
        uses,
      ),
    );
    // Settled here too: a caller that fails before awaiting it leaves no unhandled rejection.
    logged.catch(() => undefined);
    return { examples: used.flatMap(([, p]) => (p.example ? [p.example] : [])), logged };
  }
}

function studyKey(nodeId: string, study: Pick<StudySettings, 'id' | 'features' | 'label'>) {
  return `${nodeId}/${study.id}/${study.features.join(',')}/${study.label}`;
}

function byId([a]: [string, unknown], [b]: [string, unknown]): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What a node trains an update from. */
interface UpdateInput {
  study: StudySettings;
  runId: string;
  round: number;
  nodeId: string;
  key: SigningKey;
  /** Complete examples, in a fixed order (by patient id). */
  examples: readonly TrainingExample[];
  global: Float32Array;
  /** What the coordinator's strategy asks of local training, e.g. FedProx's {mu}. */
  clientConfig: Record<string, number>;
  /** Where to train: a training thread, or by default this thread. */
  trainer?: Trainer;
}

/**
 * Trains and signs one update; null when no patient here has a complete example. `logged` is
 * the logging of the examples' use (TrainingExamples.select): training runs meanwhile, and the
 * update is returned only once the log holds them, so nothing learnt from them leaves before.
 */
export async function prepareUpdate(
  args: UpdateInput & { logged: Promise<void> },
): Promise<PreparedUpdate | null> {
  const update = await trainAndSign(args);
  await args.logged;
  return update;
}

/**
 * Trains and signs one update, without waiting for the logging of the examples' use: for an
 * in-process node, whose coordinator stores the update only once that logging is done
 * (Coordinator.submit's `after`). A node whose update leaves the process uses prepareUpdate.
 */
export async function trainAndSign(args: UpdateInput): Promise<PreparedUpdate | null> {
  const { study, runId, round, nodeId } = args;
  const complete = args.examples;
  const held = heldOutSet(complete.map((e) => e.id));
  const train: Examples & { ids: string[] } = { x: [], y: [], ids: [] };
  const heldOut: Examples = { x: [], y: [] };
  for (const e of complete) {
    const part = held.has(e.id) ? heldOut : train;
    part.x.push(e.x);
    part.y.push(e.y);
    if (part === train) train.ids.push(e.id);
  }
  if (train.ids.length === 0) return null;
  const trainer = args.trainer ?? trainingHere();
  const result = await trainer.trainLocal({
    preset: study.model,
    features: study.features,
    examples: train,
    epochs: study.localEpochs,
    batchSize: study.batchSize,
    learningRate: study.learningRate,
    seed: seedOf(`${runId}/${round}/${nodeId}`),
    globalWeights: args.global,
    mu: args.clientConfig.mu ?? 0,
  });
  const metrics: Record<string, number> = {};
  if (heldOut.y.length > 0) {
    const e = await trainer.evaluate(study.model, result.weights, heldOut);
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
    nodeId,
    numExamples: result.numExamples,
    // Every patient whose records the update used, the held-out ones it was evaluated on too:
    // the coordinator checks each one's consent as it takes the update and again before it
    // aggregates, and counts them all (numExamples counts the training examples alone).
    contributors: heldOut.y.length > 0 ? complete.map((e) => e.id) : train.ids,
    updateSha256: hash('sha256', body, 'hex'),
    metrics,
  };
  const jws = await new CompactSign(Buffer.from(JSON.stringify(manifest)))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(args.key);
  return { body, manifest: jws };
}

/** A float32 copy of model bytes, aligned for Float32Array. */
export function floats(bytes: Buffer | ArrayBuffer): Float32Array {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
