// A training node simulated by its signed manifests (no training): registered with a key made
// here, it submits one update of chosen weights, so a run completes with exactly those weights.
// For suites that need a COMPLETED run fast, with the API's own nodes off (TRAINING_NODES=off).
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { createHash } from 'node:crypto';
import { TestApi } from './test-api';

export interface SimulatedNode {
  id: string;
  key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  token: string;
}

/** Registers a node for `organizationId` (an administrator's call). */
export async function registerSimulatedNode(
  api: TestApi,
  adminToken: string,
  organizationId = 'org1',
): Promise<SimulatedNode> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const { registerTrainingNode } = await api.ok<{ registerTrainingNode: { id: string } }>(
    `mutation($org: ID!, $jwk: JSON!) { registerTrainingNode(input: { organizationId: $org,
       name: "node-a", publicKeyJwk: $jwk }) { id } }`,
    { org: organizationId, jwk: await exportJWK(publicKey) },
    adminToken,
  );
  return {
    id: registerTrainingNode.id,
    key: privateKey,
    token: await api.token(registerTrainingNode.id, 'NODE', organizationId),
  };
}

/**
 * Submits `weights` (float32, in the model's order) as the node's update for `round`, trained
 * on `contributors`; answers the HTTP status. With the study's minNodes met the round closes
 * within this request.
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
  const body = Buffer.from(new Float32Array(update.weights).buffer);
  const manifest = {
    runId: update.runId,
    round: update.round,
    nodeId: node.id,
    numExamples: 20,
    contributors: update.contributors,
    updateSha256: createHash('sha256').update(body).digest('hex'),
    metrics: update.metrics ?? { loss: 0.4, accuracy: 0.8, auc: 0.87 },
  };
  const res = await fetch(`${api.url}/fl/runs/${update.runId}/rounds/${update.round}/updates`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      authorization: `Bearer ${node.token}`,
      'x-custodia-manifest': await new CompactSign(Buffer.from(JSON.stringify(manifest)))
        .setProtectedHeader({ alg: 'ES256' })
        .sign(node.key),
    },
    body,
  });
  return res.status;
}
