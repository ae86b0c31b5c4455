// The provenance of one round, shaped as the chaincode's `training.RecordRound` takes it:
// the new model's hash, its parent's, the accepted updates' hashes, the contributor
// commitment and the privacy spent so far. Built here, purely; the coordinator submits it.
import type { TrainingRound } from '@custodia/chaincode';
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { contributorLeaves, type Contributor, merkleRoot } from './merkle';

export type RoundRecord = Omit<TrainingRound, 'txId' | 'recordedAt' | 'recordedBy'>;

export interface RoundProvenance {
  runId: string;
  studyId: string;
  round: number;
  /** The round's new global model. */
  model: Float32Array;
  /** The model hash of the previous round; null for the first round. */
  parentHash: string | null;
  /** SHA-256 of each accepted update's body, as in its signed manifest. */
  updateHashes: readonly string[];
  /** Everyone whose data went into the accepted updates, with the grant it was used under. */
  contributors: readonly Contributor[];
  /** The run's privacy spent so far, or null without differential privacy. */
  privacy: { epsilon: number; delta: number } | null;
}

/**
 * SHA-256 of the model as float32 little-endian bytes — the same bytes, and so the same
 * hash, as the binary body the nodes download and hash their updates by.
 */
export function modelHash(model: Float32Array): string {
  if (endianness() !== 'LE') throw new Error('model hashing assumes a little-endian host');
  return createHash('sha256')
    .update(new Uint8Array(model.buffer, model.byteOffset, model.byteLength))
    .digest('hex');
}

const HASH = /^[0-9a-f]{64}$/;

export function roundRecord(p: RoundProvenance): RoundRecord {
  if (p.updateHashes.length === 0 || !p.updateHashes.every((h) => HASH.test(h))) {
    throw new RangeError('a round records one or more update hashes, each 64 lowercase hex digits');
  }
  if (p.parentHash !== null && !HASH.test(p.parentHash)) {
    throw new RangeError('the parent hash must be 64 lowercase hex digits');
  }
  // JSON would turn an infinite ε into null, which reads as "no differential privacy".
  if (p.privacy && !(Number.isFinite(p.privacy.epsilon) && p.privacy.epsilon >= 0)) {
    throw new RangeError(`cannot record an epsilon of ${p.privacy.epsilon}`);
  }
  const leaves = contributorLeaves(p.contributors);
  return {
    runId: p.runId,
    studyId: p.studyId,
    round: p.round,
    modelHash: modelHash(p.model),
    parentHash: p.parentHash,
    // A set, not an arrival order: sorted, so every replay of a round records the same list,
    // and once each (two nodes may send byte-identical models; the ledger refuses repeats).
    updateHashes: [...new Set(p.updateHashes)].sort(),
    contributorsRoot: merkleRoot(leaves),
    numContributors: new Set(p.contributors.map((c) => c.contributorId)).size,
    epsilon: p.privacy?.epsilon ?? null,
    delta: p.privacy?.delta ?? null,
  };
}
