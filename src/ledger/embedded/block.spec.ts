import { Block, encodeBlock, GENESIS_PREV_HASH, StoredBlock, tipBreak } from './block';

function stored(number: number, prevHash: string): StoredBlock {
  const block: Block = { number, prevHash, timestamp: '2025-01-01T00:00:00.000Z', txs: [] };
  return { number, prevHash, ...encodeBlock(block) };
}

describe("the embedded ledger's tip check", () => {
  const first = stored(0, GENESIS_PREV_HASH);
  const second = stored(1, first.hash);

  it('accepts a sound tip, and a first block linked to genesis', () => {
    expect(tipBreak(second, first)).toBeNull();
    expect(tipBreak(first, null)).toBeNull();
  });

  it('finds a tip whose body no longer matches its hash', () => {
    expect(tipBreak({ ...second, body: second.body + ' ' }, first)).toBe(
      'block 1: its content does not match its hash',
    );
  });

  it('finds a tip re-hashed after its body changed, by its header', () => {
    const body = second.body.replace(first.hash, 'f'.repeat(64));
    const rehashed = { ...second, body, hash: encodeBlock(JSON.parse(body) as Block).hash };
    expect(tipBreak(rehashed, first)).toBe('block 1: its header disagrees with its content');
  });

  it('finds a tip that does not link to its predecessor', () => {
    const forged = stored(1, 'e'.repeat(64));
    expect(tipBreak(forged, first)).toBe('block 1: it does not link to block 0');
  });

  it('finds a missing predecessor', () => {
    expect(tipBreak(stored(2, second.hash), first)).toBe('block 1 is missing');
  });
});
