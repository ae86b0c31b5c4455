import './testing/quiet-logs';
import fc from 'fast-check';
import { ChaincodeStub } from 'fabric-shim';
import * as sinon from 'sinon';
import { emit, getJson, indexKeys, key, pad, putIndex, putJson, txTime, values } from './state';
import { compositeKey, eventsOf, FakeLedger, splitCompositeKey } from './testing/fake-ledger';

describe('state helpers over the stub', () => {
  let ledger: FakeLedger;

  beforeEach(() => {
    ledger = new FakeLedger();
  });

  it('encodes and splits composite keys exactly as fabric-shim does', () => {
    const shim = ChaincodeStub.prototype;
    const part = fc.string({ unit: 'binary', minLength: 1 }).filter((p) => !p.includes('\u0000'));
    fc.assert(
      fc.property(part, fc.array(part, { maxLength: 4 }), (objectType, attributes) => {
        const k = compositeKey(objectType, attributes);
        expect(k).toBe(shim.createCompositeKey.call(undefined, objectType, attributes));
        expect(splitCompositeKey(k)).toEqual(shim.splitCompositeKey.call(undefined, k));
        expect(splitCompositeKey(k)).toEqual({ objectType, attributes });
      }),
    );
    // Any string at all, and many that look like composite keys, well formed or not.
    const anyKey = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom('\u0000', 'a', 'b') }).map((k) => `\u0000${k}`),
    );
    fc.assert(
      fc.property(anyKey, (k) => {
        expect(splitCompositeKey(k)).toEqual(shim.splitCompositeKey.call(undefined, k));
      }),
      { numRuns: 300 },
    );
    expect(() => compositeKey('t', ['a', ''])).toThrow('not a non-zero length string');
    expect(() => shim.createCompositeKey.call(undefined, 't', ['a', ''])).toThrow(
      'not a non-zero length string',
    );
  });

  it("builds composite keys with Fabric's encoding and splits them back", () => {
    const { ctx, stub } = ledger.transaction();
    const k = key(ctx, 'custodia.grant~patient', ['pat-1', 'grant-1']);
    expect(k).toBe('\u0000custodia.grant~patient\u0000pat-1\u0000grant-1\u0000');
    expect(stub.splitCompositeKey(k)).toEqual({
      objectType: 'custodia.grant~patient',
      attributes: ['pat-1', 'grant-1'],
    });
  });

  it('reads a missing key as undefined, as a peer returns empty bytes for it', async () => {
    const { ctx } = ledger.transaction();
    expect(await ctx.stub.getState('missing')).toHaveLength(0);
    expect(await getJson(ctx, key(ctx, 'custodia.grant', ['nope']))).toBeUndefined();
  });

  it('round-trips JSON values under a key', async () => {
    const { ctx } = ledger.transaction();
    const k = key(ctx, 'custodia.grant', ['g-1']);
    await putJson(ctx, k, { id: 'g-1', actions: ['READ'] });
    expect(await getJson(ctx, k)).toEqual({ id: 'g-1', actions: ['READ'] });
  });

  it('lists index keys under a partial key in key order, and no key of a longer attribute', async () => {
    const { ctx } = ledger.transaction();
    for (const [p, g] of [
      ['pat-1', 'g-b'],
      ['pat-10', 'g-x'],
      ['pat-1', 'g-a'],
      ['pat-2', 'g-c'],
    ]) {
      await putIndex(ctx, 'custodia.grant~patient', [p, g]);
    }
    expect(await indexKeys(ctx, 'custodia.grant~patient', ['pat-1'])).toEqual([
      ['pat-1', 'g-a'],
      ['pat-1', 'g-b'],
    ]);
  });

  it('closes the iterator after listing, and also when reading a value fails', async () => {
    const { ctx, stub } = ledger.transaction();
    await putIndex(ctx, 'custodia.anchor~version', ['rec-1', pad(1)]);
    await indexKeys(ctx, 'custodia.anchor~version', ['rec-1']);
    // An index entry holds a marker byte, not JSON.
    await expect(values(ctx, 'custodia.anchor~version', ['rec-1'])).rejects.toThrow(SyntaxError);

    const iterators = await Promise.all(
      stub.getStateByPartialCompositeKey.getCalls().map((c) => c.returnValue),
    );
    expect(iterators).toHaveLength(2);
    for (const iterator of iterators) sinon.assert.calledOnce(iterator.close as sinon.SinonSpy);
  });

  it('pads numbers so that their keys sort numerically', async () => {
    const { ctx } = ledger.transaction();
    for (const n of [10, 2, 1, 100, 9]) {
      await putJson(ctx, key(ctx, 'custodia.round', ['run-1', pad(n)]), { n });
    }
    expect(pad(42)).toBe('0000000042');
    expect((await values<{ n: number }>(ctx, 'custodia.round', ['run-1'])).map((v) => v.n)).toEqual(
      [1, 2, 9, 10, 100],
    );
  });

  it('orders keys by their UTF-8 bytes, as the peer does', async () => {
    const { ctx } = ledger.transaction();
    // U+FF5E sorts before U+1F600 in UTF-8, but after it in UTF-16 code units.
    for (const id of ['\u{1F600}', '\uFF5E', 'z']) {
      await putJson(ctx, compositeKey('t', [id]), { id });
    }
    expect((await values<{ id: string }>(ctx, 't', [])).map((v) => v.id)).toEqual([
      'z',
      '\uFF5E',
      '\u{1F600}',
    ]);
  });

  it("takes the transaction's time from its timestamp, dropping sub-millisecond nanos", () => {
    const { ctx, stub } = ledger.transaction({ at: '2025-01-15T09:30:00.123Z' });
    expect(txTime(ctx)).toBe('2025-01-15T09:30:00.123Z');
    expect(stub.getTxTimestamp().seconds.toString()).toBe(
      String(Date.parse('2025-01-15T09:30:00Z') / 1000),
    );

    const other = ledger.transaction();
    Object.assign(other.stub, {
      getTxTimestamp: () => ({ seconds: { toString: () => '1736933400' }, nanos: 999_999_999 }),
    });
    expect(txTime(other.ctx)).toBe('2025-01-15T09:30:00.999Z');
  });

  it('sets the one event of a transaction as JSON bytes', () => {
    const tx = ledger.transaction();
    emit(tx.ctx, 'Something', { a: 1 });
    expect(eventsOf(tx)).toEqual([{ name: 'Something', payload: { a: 1 } }]);
  });

  it('gives each transaction its own id, time and caller', () => {
    ledger.setTime('2025-03-01T00:00:00Z');
    ledger.setCaller('Org2MSP');
    const one = ledger.transaction();
    const two = ledger.transaction({ at: '2025-03-02T00:00:00Z', msp: 'Org3MSP' });
    expect(one.txId).not.toBe(two.txId);
    expect([txTime(one.ctx), one.ctx.clientIdentity.getMSPID()]).toEqual([
      '2025-03-01T00:00:00.000Z',
      'Org2MSP',
    ]);
    expect([txTime(two.ctx), two.ctx.clientIdentity.getMSPID()]).toEqual([
      '2025-03-02T00:00:00.000Z',
      'Org3MSP',
    ]);
  });
});
