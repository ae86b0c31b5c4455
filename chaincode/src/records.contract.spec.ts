import './testing/quiet-logs';
import * as sinon from 'sinon';
import { RECORD_EVENTS, RecordAnchor, RecordsContract } from './records.contract';
import { KEYS } from './state';
import { eventsOf, FakeLedger } from './testing/fake-ledger';
import { ChaincodeError } from './errors';

const records = new RecordsContract();

/** A distinct, well-formed SHA-256 hex digest per seed. */
const hash = (seed: number) => seed.toString(16).padStart(2, '0').repeat(32);

describe('RecordsContract', () => {
  let ledger: FakeLedger;

  beforeEach(() => {
    ledger = new FakeLedger();
    ledger.setTime('2025-01-15T09:30:00Z');
    ledger.setCaller('Org1MSP');
  });

  function anchor(version: string, contentHash = hash(Number(version)), patientId = 'pat-1') {
    return ledger.invoke<RecordAnchor>((ctx) =>
      records.AnchorRecord(ctx, 'rec-1', version, patientId, contentHash),
    );
  }

  async function rejection(call: Parameters<FakeLedger['failure']>[0]): Promise<string> {
    const error = await ledger.failure(call);
    expect(error).toBeInstanceOf(ChaincodeError);
    return error.message;
  }

  describe('AnchorRecord', () => {
    it('anchors version 1 of a record with the transaction time, id and caller', async () => {
      const { result, tx } = await anchor('1');
      const expected: RecordAnchor = {
        recordId: 'rec-1',
        patientId: 'pat-1',
        version: 1,
        contentHash: hash(1),
        txId: tx.txId,
        anchoredAt: '2025-01-15T09:30:00.000Z',
        anchoredBy: 'Org1MSP',
      };
      expect(result).toEqual(expected);
      expect(ledger.read(KEYS.anchor, ['rec-1'])).toEqual(expected);
      expect(ledger.read(KEYS.anchorVersion, ['rec-1', '0000000001'])).toEqual(expected);
    });

    it('emits exactly one RecordAnchored event carrying the anchor', async () => {
      const { result, tx } = await anchor('1');
      expect(eventsOf(tx)).toEqual([{ name: RECORD_EVENTS.anchored, payload: result }]);
      expect(RECORD_EVENTS.anchored).toBe('RecordAnchored');
    });

    it('anchors version 2 after version 1 and makes it the latest', async () => {
      await anchor('1');
      const { result } = await anchor('2');
      expect(result.version).toBe(2);
      expect(ledger.read<RecordAnchor>(KEYS.anchor, ['rec-1'])!.version).toBe(2);
      expect(ledger.read<RecordAnchor>(KEYS.anchorVersion, ['rec-1', '0000000001'])!.version).toBe(
        1,
      );
    });

    it('rejects skipping a version, naming the version expected', async () => {
      await anchor('1');
      const message = await rejection((ctx) =>
        records.AnchorRecord(ctx, 'rec-1', '3', 'pat-1', hash(3)),
      );
      expect(message).toBe('[CONFLICT] version 3 of record rec-1 is not the next one (expected 2)');
    });

    it('rejects a first anchor that is not version 1', async () => {
      const message = await rejection((ctx) =>
        records.AnchorRecord(ctx, 'rec-1', '2', 'pat-1', hash(2)),
      );
      expect(message).toBe('[CONFLICT] version 2 of record rec-1 is not the next one (expected 1)');
    });

    it('rejects anchoring version 1 again, even with the same hash', async () => {
      await anchor('1');
      const message = await rejection((ctx) =>
        records.AnchorRecord(ctx, 'rec-1', '1', 'pat-1', hash(1)),
      );
      expect(message).toBe('[CONFLICT] version 1 of record rec-1 is not the next one (expected 2)');
    });

    it('rejects anchoring an existing record for another patient', async () => {
      await anchor('1');
      const message = await rejection((ctx) =>
        records.AnchorRecord(ctx, 'rec-1', '2', 'pat-2', hash(2)),
      );
      expect(message).toBe('[CONFLICT] record rec-1 is anchored for another patient');
    });

    it('forbids another organisation to anchor the next version of a record', async () => {
      await anchor('1');
      const error = await ledger.failure(
        (ctx) => records.AnchorRecord(ctx, 'rec-1', '2', 'pat-1', hash(2)),
        { msp: 'Org2MSP' },
      );
      expect(error.message).toBe('[FORBIDDEN] record rec-1 is held by another organisation');
      expect((error as ChaincodeError).code).toBe('FORBIDDEN');
    });

    it.each<[string, [string, string, string, string], string]>([
      ['an uppercase hash', ['rec-1', '1', 'pat-1', hash(0xab).toUpperCase()], 'contentHash'],
      ['a hash of 63 hex digits', ['rec-1', '1', 'pat-1', hash(1).slice(1)], 'contentHash'],
      ['a hash of 65 hex digits', ['rec-1', '1', 'pat-1', `${hash(1)}0`], 'contentHash'],
      ['a hash with a prefix', ['rec-1', '1', 'pat-1', `sha256:${hash(1)}`], 'contentHash'],
      ['version 0', ['rec-1', '0', 'pat-1', hash(1)], 'version'],
      ['a version that is not a number', ['rec-1', 'abc', 'pat-1', hash(1)], 'version'],
      ['a negative version', ['rec-1', '-1', 'pat-1', hash(1)], 'version'],
      ['a fractional version', ['rec-1', '1.5', 'pat-1', hash(1)], 'version'],
      ['a record id with a space', ['rec 1', '1', 'pat-1', hash(1)], 'recordId'],
      ['a patient name', ['rec-1', '1', 'Jane Doe', hash(1)], 'patientId'],
    ])('rejects %s as an invalid argument naming the field', async (_case, args, field) => {
      const message = await rejection((ctx) => records.AnchorRecord(ctx, ...args));
      expect(message.startsWith(`[INVALID_ARGUMENT] ${field} `)).toBe(true);
    });
  });

  describe('VerifyRecord', () => {
    beforeEach(async () => {
      await anchor('1');
      await anchor('2');
    });

    it('confirms a hash that matches the anchored version', async () => {
      const { result, tx } = await ledger.invoke<RecordAnchor & { matches: boolean }>((ctx) =>
        records.VerifyRecord(ctx, 'rec-1', '1', hash(1)),
      );
      expect(result).toMatchObject({
        recordId: 'rec-1',
        version: 1,
        contentHash: hash(1),
        matches: true,
      });
      sinon.assert.notCalled(tx.stub.putState);
    });

    it("reports a mismatch for another version's hash", async () => {
      const { result } = await ledger.invoke<{ matches: boolean }>((ctx) =>
        records.VerifyRecord(ctx, 'rec-1', '1', hash(2)),
      );
      expect(result.matches).toBe(false);
    });

    it('rejects verifying a version that was never anchored', async () => {
      const message = await rejection((ctx) => records.VerifyRecord(ctx, 'rec-1', '3', hash(3)));
      expect(message).toBe('[NOT_FOUND] version 3 of record rec-1 is not anchored');
    });

    it('rejects verifying a record that was never anchored', async () => {
      const message = await rejection((ctx) => records.VerifyRecord(ctx, 'rec-2', '1', hash(1)));
      expect(message).toBe('[NOT_FOUND] version 1 of record rec-2 is not anchored');
    });

    it('rejects a malformed hash before looking anything up', async () => {
      const message = await rejection((ctx) => records.VerifyRecord(ctx, 'rec-1', '1', 'abc'));
      expect(message.startsWith('[INVALID_ARGUMENT] contentHash ')).toBe(true);
    });
  });

  describe('RecordHistory', () => {
    it('lists every anchored version of the record in version order', async () => {
      for (let v = 1; v <= 11; v++) await anchor(String(v));
      await ledger.invoke((ctx) => records.AnchorRecord(ctx, 'rec-10', '1', 'pat-1', hash(99)));

      const { result } = await ledger.invoke<RecordAnchor[]>((ctx) =>
        records.RecordHistory(ctx, 'rec-1'),
      );
      expect(result.map((a) => a.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(result.every((a) => a.recordId === 'rec-1')).toBe(true);
    });

    it('lists nothing for a record that was never anchored', async () => {
      const { result } = await ledger.invoke<RecordAnchor[]>((ctx) =>
        records.RecordHistory(ctx, 'rec-404'),
      );
      expect(result).toEqual([]);
    });
  });
});
