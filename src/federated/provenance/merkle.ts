// A Merkle-root commitment to the patients whose data went into a round, written to the
// ledger with the round. A patient handed their leaf's inclusion proof can check, against
// the ledger alone, that their contribution (and the grant it was made under) is part of
// the committed set — and the coordinator cannot later change that set.
//
// The tree is RFC 6962's (Certificate Transparency): leaves hash as SHA-256(0x00 ‖ data),
// interior nodes as SHA-256(0x01 ‖ left ‖ right), so no leaf can pass for an interior node.
// A level with an odd number of nodes promotes its last node unchanged to the next level —
// which yields exactly RFC 6962's tree — rather than pairing it with itself as Bitcoin does,
// where a list and the same list with its last leaf repeated share a root.
//
// A leaf's data is a domain tag and three length-prefixed fields — salt, contributor id,
// grant id — so no choice of ids can make two different pairs encode alike (ids may hold
// ':', so a separator alone would not do). The salt is optional but recommended: grants
// and pseudonymous ids are on the ledger, so without salts anyone could test which of a
// study's grant holders make up a root of known size. With a random salt per leaf, kept by
// the coordinator and given to each patient with their proof, the root reveals nothing.
import { hash } from 'node:crypto';
import { randomBytesPooled } from '../../common/random';

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);
const LEAF_DOMAIN = Buffer.from('custodia/contributor/v1', 'utf8');
const HASH = /^[0-9a-f]{64}$/;

export interface Contributor {
  contributorId: string;
  /** The grant under which this contributor's data was used. */
  grantId: string;
  /** 32 random bytes as 64 hex digits; see the file comment. */
  salt?: string;
}

/**
 * An inclusion proof as RFC 9162 (section 2.1.3) defines it, so a patient can check it with
 * any Certificate Transparency library given our leaf hash: the leaf's position, the tree's
 * size, and the sibling hashes from the leaf up to the root.
 */
export interface MerkleProof {
  leafIndex: number;
  treeSize: number;
  path: string[];
}

export function newContributorSalt(): string {
  return randomBytesPooled(32).toString('hex');
}

export function contributorLeaf(contributor: Contributor): string {
  const { contributorId, grantId, salt } = contributor;
  if (contributorId.length === 0 || grantId.length === 0) {
    throw new RangeError('a contributor needs a non-empty contributor id and grant id');
  }
  if (salt !== undefined && !HASH.test(salt)) {
    throw new RangeError('a contributor salt must be 32 bytes as 64 lowercase hex digits');
  }
  return sha256(
    LEAF_PREFIX,
    LEAF_DOMAIN,
    lengthPrefixed(salt === undefined ? Buffer.alloc(0) : Buffer.from(salt, 'hex')),
    lengthPrefixed(Buffer.from(contributorId, 'utf8')),
    lengthPrefixed(Buffer.from(grantId, 'utf8')),
  );
}

/**
 * The leaves of a round's contributor set, in tree order: sorted by contributor id, then
 * grant id, comparing UTF-8 bytes (so any language can reproduce the order); a pair listed
 * twice is one leaf.
 */
export function contributorLeaves(contributors: readonly Contributor[]): string[] {
  // Each id's bytes made once, not at every comparison (a round sorts hundreds of them).
  const sorted = contributors
    .map((c) => ({ c, id: Buffer.from(c.contributorId), grant: Buffer.from(c.grantId) }))
    .sort((a, b) => Buffer.compare(a.id, b.id) || Buffer.compare(a.grant, b.grant))
    .map(({ c }) => c);
  const leaves: string[] = [];
  for (let k = 0; k < sorted.length; k++) {
    const c = sorted[k];
    const previous = sorted[k - 1];
    if (previous && previous.contributorId === c.contributorId && previous.grantId === c.grantId) {
      if (previous.salt !== c.salt) {
        throw new RangeError('a contributor is listed twice under one grant with different salts');
      }
      continue;
    }
    leaves.push(contributorLeaf(c));
  }
  return leaves;
}

/** The root the ledger records as `contributorsRoot`. */
export function contributorsRoot(contributors: readonly Contributor[]): string {
  return merkleRoot(contributorLeaves(contributors));
}

/** Root over leaf hashes in the given order. */
export function merkleRoot(leaves: readonly string[]): string {
  if (leaves.length === 0) throw new RangeError('a Merkle root needs at least one leaf');
  let level = leaves.map(checkHash);
  while (level.length > 1) level = parentLevel(level);
  return level[0];
}

/** The siblings that lead from `leaves[index]` to the root. */
export function merkleProof(leaves: readonly string[], index: number): MerkleProof {
  if (!Number.isSafeInteger(index) || index < 0 || index >= leaves.length) {
    throw new RangeError(`leaf index ${index} is outside a tree of ${leaves.length} leaves`);
  }
  const path: string[] = [];
  let level = leaves.map(checkHash);
  let i = index;
  while (level.length > 1) {
    const sibling = i % 2 === 1 ? i - 1 : i + 1;
    // The last node of an odd level is promoted and has no sibling at this level.
    if (sibling < level.length) path.push(level[sibling]);
    level = parentLevel(level);
    i = Math.floor(i / 2);
  }
  return { leafIndex: index, treeSize: leaves.length, path };
}

/**
 * RFC 9162's verification (section 2.1.3.2): the path must lead to the root, and be exactly
 * as long as a tree of `treeSize` leaves requires at `leafIndex`.
 */
export function verifyMerkleProof(root: string, leaf: string, proof: MerkleProof): boolean {
  const { leafIndex, treeSize, path } = proof;
  if (!HASH.test(root) || !HASH.test(leaf) || !path.every((h) => HASH.test(h))) return false;
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize)) return false;
  if (leafIndex < 0 || leafIndex >= treeSize) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let hash = leaf;
  for (const sibling of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      hash = nodeHash(sibling, hash);
      // Skip the levels where this node was promoted without a sibling.
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      hash = nodeHash(hash, sibling);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && hash === root;
}

function parentLevel(level: readonly string[]): string[] {
  const next: string[] = [];
  for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i], level[i + 1]));
  if (level.length % 2 === 1) next.push(level[level.length - 1]);
  return next;
}

function nodeHash(left: string, right: string): string {
  return sha256(NODE_PREFIX, Buffer.from(left, 'hex'), Buffer.from(right, 'hex'));
}

function lengthPrefixed(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function sha256(...parts: Buffer[]): string {
  // One-shot: a Hash object per leaf and node cost more than the hashing itself.
  return hash('sha256', Buffer.concat(parts), 'hex');
}

function checkHash(hash: string): string {
  if (!HASH.test(hash))
    throw new RangeError('a Merkle leaf must be a SHA-256 hash in lowercase hex');
  return hash;
}
