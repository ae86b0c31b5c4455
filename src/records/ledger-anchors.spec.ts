import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Ledger } from '../ledger';
import { LedgerAnchors } from './ledger-anchors';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A ledger that answers VerifyRecord from a table and counts the calls. */
function ledgerOf(
  anchors: Map<string, { contentHash: string; txId: string; latestVersion?: number }>,
) {
  const calls: string[][] = [];
  const ledger = {
    evaluate: async (_contract: string, fn: string, args: string[]) => {
      calls.push([fn, ...args]);
      const found = anchors.get(`${args[0]}:${args[1]}`);
      if (!found) throw new Error('ledger down');
      return found;
    },
  } as unknown as Ledger;
  return { ledger, calls };
}

describe('LedgerAnchors', () => {
  it('answers a remembered anchor exactly as it was given, without asking the ledger', async () => {
    const { ledger, calls } = ledgerOf(new Map());
    const anchors = new LedgerAnchors(ledger);
    const cases = [
      // Hex hash and hex transaction id: packed as bytes.
      { id: 'r1', contentHash: sha('a'), txId: sha('tx-a') },
      // Anything else is kept as text.
      { id: 'r2', contentHash: sha('b'), txId: 'not-hex:transaction/7' },
      { id: 'r3', contentHash: sha('c').toUpperCase(), txId: sha('tx-c') },
    ];
    for (const c of cases) anchors.remember(c.id, 1, c);
    for (const c of cases) {
      await expect(
        anchors.lookupOne({
          recordId: c.id,
          version: 1,
          contentHash: c.contentHash,
          current: true,
        }),
      ).resolves.toEqual({ state: 'anchored', contentHash: c.contentHash, txId: c.txId });
    }
    expect(calls).toEqual([]);
  });

  it('remembers what the ledger answered, and asks again for another version', async () => {
    const onLedger = new Map([
      ['r1:1', { contentHash: sha('v1'), txId: sha('t1') }],
      ['r1:2', { contentHash: sha('v2'), txId: sha('t2') }],
    ]);
    const { ledger, calls } = ledgerOf(onLedger);
    const anchors = new LedgerAnchors(ledger);
    const q1 = { recordId: 'r1', version: 1, contentHash: sha('v1'), current: false };
    const first = await anchors.lookupOne(q1);
    expect(await anchors.lookupOne(q1)).toEqual(first);
    expect(first).toEqual({ state: 'anchored', ...onLedger.get('r1:1') });
    expect(calls).toHaveLength(1);
    expect(await anchors.lookupOne({ ...q1, version: 2 })).toEqual({
      state: 'anchored',
      ...onLedger.get('r1:2'),
    });
    expect(calls).toHaveLength(2);
  });

  it('finds a current record rolled back: the ledger, or this process, knows a later version', async () => {
    const v1 = { contentHash: sha('v1'), txId: sha('t1') };
    const { ledger, calls } = ledgerOf(new Map([['r1:1', { ...v1, latestVersion: 2 }]]));
    const anchors = new LedgerAnchors(ledger);
    const asked = { recordId: 'r1', version: 1, contentHash: sha('v1'), current: true };
    const superseded = { state: 'superseded', ...v1, latestVersion: 2 };
    expect(await anchors.lookupOne(asked)).toEqual(superseded);
    // Remembered: no second call, the same answer; as an older version of a history, fine.
    expect(await anchors.lookupOne(asked)).toEqual(superseded);
    expect(await anchors.lookupOne({ ...asked, current: false })).toEqual({
      state: 'anchored',
      ...v1,
    });
    expect(calls).toHaveLength(1);

    // Version 2 anchored by this process, then the row put back to version 1: its anchor was
    // remembered while current, and still the later one is known.
    const here = new LedgerAnchors(ledgerOf(new Map()).ledger);
    here.remember('r9', 1, v1);
    const r9 = { ...asked, recordId: 'r9' };
    expect(await here.lookupOne(r9)).toEqual({ state: 'anchored', ...v1 });
    here.remember('r9', 2, { contentHash: sha('v2'), txId: sha('t2') });
    expect(await here.lookupOne(r9)).toEqual({ ...superseded });
  });

  it('does not call a record amended since it was read rolled back: storage moved on', async () => {
    const v1 = { contentHash: sha('v1'), txId: sha('t1') };
    const { ledger } = ledgerOf(new Map([['r1:1', { ...v1, latestVersion: 2 }]]));
    const stored = { version: 2 };
    const db = { query: async () => [stored] } as unknown as DataSource;
    const anchors = new LedgerAnchors(ledger, db);
    const asked = { recordId: 'r1', version: 1, contentHash: sha('v1'), current: true };
    expect(await anchors.lookupOne(asked)).toEqual({ state: 'anchored', ...v1 });
    // Put back to version 1 in storage: now it is rolled back.
    stored.version = 1;
    expect(await anchors.lookupOne(asked)).toEqual({
      state: 'superseded',
      ...v1,
      latestVersion: 2,
    });
  });

  it('reports a record found rolled back, by ids only', async () => {
    const v1 = { contentHash: sha('v1'), txId: sha('t1') };
    const { ledger } = ledgerOf(new Map([['r1:1', { ...v1, latestVersion: 3 }]]));
    const reports: unknown[][] = [];
    const monitor = { report: (...args: unknown[]) => reports.push(args) };
    const anchors = new LedgerAnchors(ledger, undefined, monitor as never);
    await anchors.lookupOne({ recordId: 'r1', version: 1, contentHash: sha('v1'), current: true });
    expect(reports).toEqual([
      [
        'record',
        'record rolled back to an older version than the ledger holds',
        { recordId: 'r1', version: 1, latestVersion: 3 },
      ],
    ]);
  });

  it('asks the ledger with a well-formed hash even when the stored one is not', async () => {
    const v1 = { contentHash: sha('v1'), txId: sha('t1') };
    const { ledger, calls } = ledgerOf(new Map([['r1:1', v1]]));
    const anchors = new LedgerAnchors(ledger);
    expect(
      await anchors.lookupOne({
        recordId: 'r1',
        version: 1,
        contentHash: 'garbage',
        current: true,
      }),
    ).toEqual({ state: 'anchored', ...v1 });
    expect(calls).toEqual([['VerifyRecord', 'r1', '1', '0'.repeat(64)]]);
  });
});
