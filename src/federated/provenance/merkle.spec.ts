import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  contributorLeaf,
  contributorLeaves,
  contributorsRoot,
  merkleProof,
  merkleRoot,
  newContributorSalt,
  verifyMerkleProof,
  type Contributor,
} from './merkle';

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);
const hex = (b: Buffer) => b.toString('hex');
const leafBytes = (i: number) => sha(Buffer.from(`leaf ${i}`));
const leaves = (n: number) => Array.from({ length: n }, (_, i) => hex(leafBytes(i)));

const contributorArb = fc.record({
  contributorId: fc.string({ minLength: 1, maxLength: 12 }),
  grantId: fc.string({ minLength: 1, maxLength: 12 }),
});
const contributorSet = fc.uniqueArray(contributorArb, {
  minLength: 1,
  maxLength: 24,
  selector: (c) => `${c.contributorId.length}/${c.contributorId}/${c.grantId}`,
});

describe('contributor leaves', () => {
  it('hash 0x00, the domain tag and the length-prefixed salt, contributor id and grant id', () => {
    // Computed independently with Python's hashlib.
    expect(contributorLeaf({ contributorId: 'pat-1', grantId: 'grant-9' })).toBe(
      '131619cd8ef24aa44a2365df8ecbeebbe02d0136ac3f4795810984fbf6aa4394',
    );
    expect(
      contributorLeaf({ contributorId: 'pat-1', grantId: 'grant-9', salt: '11'.repeat(32) }),
    ).toBe('c1c88a546c59a03dc7a4e39f86a05289fb103e6c3bd9e4702de455980407a867');
  });

  it('cannot be confused when ids contain the separator a plain join would use', () => {
    expect(contributorLeaf({ contributorId: 'a:b', grantId: 'c' })).not.toBe(
      contributorLeaf({ contributorId: 'a', grantId: 'b:c' }),
    );
  });

  it('are ordered by contributor id, then grant id, and a pair listed twice counts once', () => {
    const list: Contributor[] = [
      { contributorId: 'pat-3', grantId: 'grant-1' },
      { contributorId: 'pat-1', grantId: 'grant-9' },
      { contributorId: 'pat-2', grantId: 'grant-3' },
      { contributorId: 'pat-1', grantId: 'grant-9' },
    ];
    expect(contributorLeaves(list)).toEqual(
      [list[1], list[2], list[0]].map((c) => contributorLeaf(c)),
    );
    // Also from Python: the three-leaf root of this set.
    expect(contributorsRoot(list)).toBe(
      '1a0da0032be59f307792a8daaf186292765a23ffa429e11d6e75a77e7ce9ab8c',
    );
  });

  it('are ordered by UTF-8 bytes, which astral characters sort by unlike UTF-16', () => {
    // U+1F600 is F0 9F 98 80 in UTF-8 (after EF BC A1, U+FF21), but D83D DE00 in UTF-16 (before).
    const astral = { contributorId: '\u{1F600}', grantId: 'g' };
    const fullwidth = { contributorId: '\uFF21', grantId: 'g' };
    expect(contributorLeaves([astral, fullwidth])).toEqual(
      [fullwidth, astral].map((c) => contributorLeaf(c)),
    );
  });

  it('refuse a pair listed twice with different salts, and malformed salts', () => {
    const c = { contributorId: 'p', grantId: 'g' };
    expect(() =>
      contributorLeaves([
        { ...c, salt: newContributorSalt() },
        { ...c, salt: newContributorSalt() },
      ]),
    ).toThrow(/different salts/);
    expect(() => contributorLeaf({ ...c, salt: 'abc' })).toThrow(/salt/);
    expect(() => contributorLeaf({ contributorId: '', grantId: 'g' })).toThrow(/non-empty/);
  });
});

describe('Merkle root', () => {
  it('is the leaf itself for one leaf, and RFC 6962’s tree for two, three and four', () => {
    const [a, b, c, d] = [0, 1, 2, 3].map(leafBytes);
    expect(merkleRoot(leaves(1))).toBe(hex(a));
    expect(merkleRoot(leaves(2))).toBe(hex(node(a, b)));
    // Odd level: c is promoted, not paired with itself.
    expect(merkleRoot(leaves(3))).toBe(hex(node(node(a, b), c)));
    expect(merkleRoot(leaves(4))).toBe(hex(node(node(a, b), node(c, d))));
  });

  it('differs between a list and the same list with its last leaf repeated', () => {
    const three = leaves(3);
    expect(merkleRoot([...three, three[2]])).not.toBe(merkleRoot(three));
  });

  it('does not depend on the order contributors are listed in', () => {
    const setAndPermutation = contributorSet.chain((set) =>
      fc.tuple(
        fc.constant(set),
        fc.shuffledSubarray(set, { minLength: set.length, maxLength: set.length }),
      ),
    );
    fc.assert(
      fc.property(setAndPermutation, ([set, shuffled]) => {
        expect(contributorsRoot(shuffled)).toBe(contributorsRoot(set));
      }),
    );
  });

  it('changes when any contributor or grant changes, or one is added or removed', () => {
    fc.assert(
      fc.property(contributorSet, fc.nat(), contributorArb, (set, pick, replacement) => {
        const root = contributorsRoot(set);
        const k = pick % set.length;
        const changed = [...set];
        changed[k] = replacement;
        const same = (a: Contributor, b: Contributor) =>
          a.contributorId === b.contributorId && a.grantId === b.grantId;
        if (!set.some((c) => same(c, replacement))) {
          expect(contributorsRoot(changed)).not.toBe(root);
          expect(contributorsRoot([...set, replacement])).not.toBe(root);
        }
        if (set.length > 1) {
          expect(contributorsRoot(set.filter((_, i) => i !== k))).not.toBe(root);
        }
      }),
    );
  });

  it('rejects an empty tree and leaves that are not SHA-256 hex', () => {
    expect(() => merkleRoot([])).toThrow(/at least one leaf/);
    expect(() => merkleRoot(['ABC'])).toThrow(/lowercase hex/);
  });
});

describe('inclusion proofs', () => {
  it('verify for every leaf of every tree size', () => {
    for (let n = 1; n <= 33; n++) {
      const list = leaves(n);
      const root = merkleRoot(list);
      list.forEach((leaf, i) =>
        expect(verifyMerkleProof(root, leaf, merkleProof(list, i))).toBe(true),
      );
    }
  });

  it('let a patient check their own leaf against the ledger’s root', () => {
    fc.assert(
      fc.property(contributorSet, fc.nat(), (set, pick) => {
        const me = set[pick % set.length];
        const list = contributorLeaves(set);
        const mine = contributorLeaf(me);
        const proof = merkleProof(list, list.indexOf(mine));
        expect(verifyMerkleProof(contributorsRoot(set), mine, proof)).toBe(true);
      }),
    );
  });

  it('fail for another leaf, another root, another position, or a path cut or extended', () => {
    const list = leaves(7);
    const root = merkleRoot(list);
    const proof = merkleProof(list, 4);
    expect(verifyMerkleProof(root, list[4], proof)).toBe(true);
    expect(verifyMerkleProof(root, list[5], proof)).toBe(false);
    expect(verifyMerkleProof(merkleRoot(leaves(8)), list[4], proof)).toBe(false);
    expect(verifyMerkleProof(root, list[4], { ...proof, leafIndex: 5 })).toBe(false);
    expect(verifyMerkleProof(root, list[4], { ...proof, path: [...proof.path, list[0]] })).toBe(
      false,
    );
    expect(verifyMerkleProof(root, list[4], { ...proof, path: proof.path.slice(1) })).toBe(false);
    expect(verifyMerkleProof(root, 'not a hash', proof)).toBe(false);
  });

  it('cannot pass an interior node off as a leaf', () => {
    const [a, b] = [0, 1].map(leafBytes);
    const list = [hex(a), hex(b), hex(leafBytes(2))];
    // (a, b) is the root's left child; claiming it as leaf 0 with a one-step path fails,
    // because a tree of 3 leaves needs a two-step path to leaf 0.
    const interior = hex(node(a, b));
    const shortened = { leafIndex: 0, treeSize: 3, path: [list[2]] };
    expect(verifyMerkleProof(merkleRoot(list), interior, shortened)).toBe(false);
  });

  it('refuses an index outside the tree', () => {
    expect(() => merkleProof(leaves(3), 3)).toThrow(/outside a tree of 3/);
  });
});
