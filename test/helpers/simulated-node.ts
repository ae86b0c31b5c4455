// Training nodes simulated by their signed manifests (no training): registered with a key made
// here, they send updates of chosen weights, well-formed or not, as a node would. For suites
// that drive the coordinator themselves, with the API's own nodes off (TRAINING_NODES=off).
import { CompactSign, exportJWK, generateKeyPair, JWK } from 'jose';
import { createHash } from 'node:crypto';
import { TestApi } from './test-api';

export type NodeKey = Parameters<CompactSign['sign']>[0];

export interface SimulatedNode {
  id: string;
  key: NodeKey;
  /** The node's private key as a JWK (what `custodia node --key` reads). */
  privateJwk: JWK;
  token: string;
}

/** Registers a node (an administrator's call), of the API's own organisation by default. */
export async function registerSimulatedNode(
  api: TestApi,
  adminToken: string,
  { organizationId = api.config.orgId, name = 'node-a' } = {},
): Promise<SimulatedNode> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const { registerTrainingNode } = await api.ok<{ registerTrainingNode: { id: string } }>(
    `mutation($org: ID!, $name: String!, $jwk: JSON!) { registerTrainingNode(input: {
       organizationId: $org, name: $name, publicKeyJwk: $jwk }) { id } }`,
    { org: organizationId, name, jwk: await exportJWK(publicKey) },
    adminToken,
  );
  return {
    id: registerTrainingNode.id,
    key: privateKey,
    privateJwk: await exportJWK(privateKey),
    token: await api.token(registerTrainingNode.id, 'NODE', organizationId),
  };
}

/** Model weights as an update's body (float32, in the model's order). */
export const weights = (...v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer);

/**
 * The manifest of `body` sent by node `nodeId`: its SHA-256 and 10 examples, then `fields`,
 * which may override any of them (a bad manifest is made that way).
 */
export function manifestOf(
  nodeId: string,
  body: Buffer,
  fields: { runId: string; round: number; contributors: string[] } & Record<string, unknown>,
): Record<string, unknown> {
  return {
    nodeId,
    // One example per contributing patient, as the nodes here train.
    numExamples: fields.contributors.length,
    updateSha256: createHash('sha256').update(body).digest('hex'),
    ...fields,
  };
}

/** A manifest as a compact JWS (ES256) by `key`. */
export function signManifest(manifest: Record<string, unknown>, key: NodeKey): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify(manifest)))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(key);
}

/** POSTs an update as a node does; answers the HTTP status and the coordinator's answer. */
export async function postUpdate(
  api: TestApi,
  update: { runId: string; round: number; body: Buffer; jws: string; token: string },
): Promise<{ status: number; body: { status: string; reason: string | null } }> {
  const res = await fetch(`${api.url}/fl/runs/${update.runId}/rounds/${update.round}/updates`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      authorization: `Bearer ${update.token}`,
      'x-custodia-manifest': update.jws,
    },
    body: update.body,
  });
  return {
    status: res.status,
    body: (await res.json()) as { status: string; reason: string | null },
  };
}

/**
 * Submits `weights` as the node's update for `round`, trained on `contributors` (20 examples);
 * answers the HTTP status. With the study's minNodes met the round closes within this request.
 */
export async function submitUpdate(
  api: TestApi,
  node: SimulatedNode,
  update: {
    runId: string;
    round: number;
    weights: number[];
    contributors: string[];
    metrics?: Record<string, number>;
  },
): Promise<number> {
  const { runId, round, contributors } = update;
  const body = weights(...update.weights);
  const manifest = manifestOf(node.id, body, {
    runId,
    round,
    contributors,
    numExamples: contributors.length,
    metrics: update.metrics ?? { loss: 0.4, accuracy: 0.8, auc: 0.87 },
  });
  const jws = await signManifest(manifest, node.key);
  return (await postUpdate(api, { runId, round, body, jws, token: node.token })).status;
}
