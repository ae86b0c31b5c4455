import { StateReader } from './chaincode-host';
import { ReadSet, SnapshotReader } from './snapshot-reader';

const committed: StateReader = {
  get: () => Promise.reject(new Error('keys are read through the batch')),
  range: async (start) => [{ key: start, value: Buffer.from('r') }],
};

describe('reads of a block run at once', () => {
  it('reads the keys asked for in one turn in one query, and each key once per block', async () => {
    const loads: string[][] = [];
    const reader = new SnapshotReader(async (keys) => {
      loads.push([...keys].sort());
      return new Map<string, Buffer | Error>([
        ['a', Buffer.from('1')],
        ['bad', new Error('a row failing its seal')],
      ]);
    }, committed);
    const first = await Promise.allSettled([reader.get('a'), reader.get('b'), reader.get('bad')]);
    expect(first.map((r) => (r.status === 'fulfilled' ? r.value?.toString() : 'error'))).toEqual([
      '1',
      undefined,
      'error',
    ]);
    await expect(reader.get('a')).resolves.toEqual(Buffer.from('1'));
    await expect(reader.get('c')).resolves.toBeUndefined();
    expect(loads).toEqual([['a', 'b', 'bad'], ['c']]);
  });

  it('fails every read of the turn when the query fails', async () => {
    const reader = new SnapshotReader(
      () => Promise.reject(new Error('connection lost')),
      committed,
    );
    const reads = await Promise.allSettled([reader.get('a'), reader.get('b')]);
    expect(reads.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it("knows when a block-mate's writes touch a transaction's reads", async () => {
    const reads = new ReadSet();
    const through = reads.over({
      get: async () => undefined,
      range: async () => [],
    });
    await through.get('k1');
    await through.range('p\u0000a', 'p\u0000b');
    expect(reads.touches(new Map())).toBe(false);
    expect(reads.touches(new Map([['k2', null]]))).toBe(false);
    expect(reads.touches(new Map([['k1', null]]))).toBe(true);
    // A key written inside a scanned range, even one the scan did not return.
    expect(reads.touches(new Map([['p\u0000a\u0000x', Buffer.from('v')]]))).toBe(true);
    expect(reads.touches(new Map([['p\u0000b', Buffer.from('v')]]))).toBe(false);
  });
});
