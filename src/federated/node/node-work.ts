// What every training node does for a round, in-process or remote: select its organisation's
// patients that may be trained on, read their records, build examples, train from the round's
// global model, evaluate on a held-out fifth, and sign the manifest of the update.
import { CompactSign } from 'jose';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { PolicyDecisionPoint } from '../../consent';
import { RecordsService } from '../../records';
import type { FhirResource } from '../../records/fhir';
import type { ModelPreset } from '../model/architecture';
import { buildExample } from '../model/features';
import type { Examples } from '../model/train';

type TrainModule = typeof import('../model/train');
let train: TrainModule | undefined;
/** TensorFlow.js loads with the first round trained, not with every API process. */
function trainer(): TrainModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  train ??= require('../model/train') as TrainModule;
  return train;
}

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
  return new Set(patientIds.filter((id) => createHash('sha256').update(id).digest()[0] % 5 === 0));
}

function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0) & 0x7fffffff;
}

/**
 * The patients of `organizationId` with an active TRAIN grant for the study, and their
 * decrypted resources (each read logged in the patient's access log).
 */
export async function localTrainingData(
  db: DataSource,
  pdp: PolicyDecisionPoint,
  records: RecordsService,
  organizationId: string,
  studyId: string,
  nodeId: string,
): Promise<Map<string, Record<string, unknown>[]>> {
  const patients: { id: string }[] = await db.query(
    `SELECT id FROM patients WHERE organization_id = $1 AND erased_at IS NULL ORDER BY id`,
    [organizationId],
  );
  const grants = await pdp.trainingGrants(
    studyId,
    patients.map((p) => p.id),
    nodeId,
  );
  return grants.size === 0 ? new Map() : records.resourcesForTraining(nodeId, grants);
}

/** Trains and signs one update; null when no patient here has a complete example. */
export async function prepareUpdate(args: {
  study: StudySettings;
  runId: string;
  round: number;
  nodeId: string;
  key: SigningKey;
  resources: Map<string, Record<string, unknown>[]>;
  global: Float32Array;
  /** What the coordinator's strategy asks of local training, e.g. FedProx's {mu}. */
  clientConfig: Record<string, number>;
}): Promise<PreparedUpdate | null> {
  const { study, runId, round, nodeId } = args;
  const definition = { features: study.features, label: study.label, asOf: EXAMPLES_AS_OF };
  const complete: { id: string; x: number[]; y: number }[] = [];
  for (const [patientId, list] of args.resources) {
    const example = buildExample(list as FhirResource[], definition);
    if (example.included) complete.push({ id: patientId, x: example.x, y: example.y });
  }
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
  const { trainLocal, evaluate } = trainer();
  const result = await trainLocal({
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
    nodeId,
    numExamples: result.numExamples,
    contributors: train.ids,
    updateSha256: createHash('sha256').update(body).digest('hex'),
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
