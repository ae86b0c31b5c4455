import { Block, BlockTx } from './block';
import { lastWrite, StateVersions } from './state-versions';

const tx = (writes: BlockTx['writes']): BlockTx => ({
  txId: 'x'.repeat(64),
  contract: 'consent',
  fn: 'GrantConsent',
  argsHash: '0'.repeat(64),
  creator: 'org1',
  timestamp: '2026-12-03T00:00:00.000Z',
  writes,
  event: null,
});
const block = (number: number, txs: BlockTx[]): Block => ({
  number,
  prevHash: '0'.repeat(64),
  timestamp: '2026-12-03T00:00:00.000Z',
  txs,
});

describe('StateVersions', () => {
  it('names the block whose write of each key stands; a deleted key has none', () => {
    const v = new StateVersions();
    v.apply(
      block(0, [
        tx([
          { key: 'a', value: 'MQ==' },
          { key: 'b', value: 'Mg==' },
        ]),
      ]),
      'h0',
    );
    v.apply(block(1, [tx([{ key: 'a', value: 'Mw==' }]), tx([{ key: 'b', value: null }])]), 'h1');
    expect(v.writer('a')).toBe(1);
    expect(v.writer('b')).toBeUndefined();
    expect(v.head).toBe(1);
    expect(v.headHash).toBe('h1');
    expect(v.size).toBe(1);
  });

  it('leaves a block already taken in, or one beyond a gap', () => {
    const v = new StateVersions();
    v.apply(block(0, [tx([{ key: 'a', value: 'MQ==' }])]), 'h0');
    v.apply(block(0, [tx([{ key: 'a', value: null }])]), 'h0');
    v.apply(block(2, [tx([{ key: 'a', value: null }])]), 'h2');
    expect(v.writer('a')).toBe(0);
    expect(v.head).toBe(0);
  });

  it("reads a block's last write of a key", () => {
    const b = block(4, [tx([{ key: 'a', value: 'MQ==' }]), tx([{ key: 'a', value: 'Mg==' }])]);
    expect(lastWrite(b, 'a')?.value).toBe('Mg==');
    expect(lastWrite(b, 'z')).toBeUndefined();
  });
});
