import { contributorsRoot } from './merkle';
import { modelHash, roundRecord, type RoundProvenance } from './round-record';

const h = (c: string) => c.repeat(64);

function provenance(overrides: Partial<RoundProvenance> = {}): RoundProvenance {
  return {
    runId: 'run-1',
    studyId: 'study-1',
    round: 2,
    model: Float32Array.of(1, -2.5, 0.1),
    parentHash: h('a'),
    updateHashes: [h('c'), h('b')],
    contributors: [
      { contributorId: 'pat-2', grantId: 'g-2' },
      { contributorId: 'pat-1', grantId: 'g-1' },
      { contributorId: 'pat-1', grantId: 'g-7' },
    ],
    privacy: { epsilon: 1.25, delta: 1e-5 },
    ...overrides,
  };
}

describe('round provenance', () => {
  it('hashes a model as its float32 little-endian bytes, the body nodes download', () => {
    // sha256 of struct.pack('<3f', 1.0, -2.5, 0.1), from Python.
    expect(modelHash(Float32Array.of(1, -2.5, 0.1))).toBe(
      '2f9cc761bc2594fa578868daeedc59b0fc115513fae3e5dc09c4e86e50b8aaf6',
    );
    // Only the view's bytes count, not the rest of its buffer.
    const view = new Float32Array(Float32Array.of(9, 1, -2.5, 0.1, 9).buffer, 4, 3);
    expect(modelHash(view)).toBe(modelHash(Float32Array.of(1, -2.5, 0.1)));
  });

  it('records what RecordRound takes: hashes, sorted update hashes, contributor root, ε so far', () => {
    const p = provenance();
    expect(roundRecord(p)).toEqual({
      runId: 'run-1',
      studyId: 'study-1',
      round: 2,
      modelHash: modelHash(p.model),
      parentHash: h('a'),
      updateHashes: [h('b'), h('c')],
      contributorsRoot: contributorsRoot(p.contributors),
      numContributors: 2,
      epsilon: 1.25,
      delta: 1e-5,
    });
  });

  it('records byte-identical updates from two nodes once, as the ledger takes a set', () => {
    const record = roundRecord(provenance({ updateHashes: [h('c'), h('b'), h('c')] }));
    expect(record.updateHashes).toEqual([h('b'), h('c')]);
  });

  it('records null ε and δ without differential privacy, and no parent for the first round', () => {
    const record = roundRecord(provenance({ round: 1, parentHash: null, privacy: null }));
    expect(record).toMatchObject({ round: 1, parentHash: null, epsilon: null, delta: null });
  });

  it('refuses what the ledger would misread: an infinite ε, no updates, malformed hashes', () => {
    expect(() => roundRecord(provenance({ privacy: { epsilon: Infinity, delta: 1e-5 } }))).toThrow(
      /epsilon/,
    );
    expect(() => roundRecord(provenance({ updateHashes: [] }))).toThrow(/update hashes/);
    expect(() => roundRecord(provenance({ updateHashes: ['xyz'] }))).toThrow(/update hashes/);
    expect(() => roundRecord(provenance({ parentHash: 'A'.repeat(64) }))).toThrow(/parent hash/);
  });
});
