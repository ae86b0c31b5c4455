import './testing/quiet-logs';
import { AUDIT_EVENTS, AuditContract, AuditHead } from './audit.contract';
import { KEYS } from './state';
import { eventsOf, FakeLedger } from './testing/fake-ledger';
import { ChaincodeError } from './errors';

const audit = new AuditContract();

/** A distinct, well-formed SHA-256 hex digest per seed. */
const hash = (seed: number) => seed.toString(16).padStart(2, '0').repeat(32);

describe('AuditContract', () => {
  let ledger: FakeLedger;

  beforeEach(() => {
    ledger = new FakeLedger();
    ledger.setTime('2025-01-15T09:30:00Z');
  });

  function anchor(seq: string, msp = 'Org1MSP', chainId = 'access-log') {
    return ledger.invoke<AuditHead>(
      (ctx) => audit.AnchorAuditHead(ctx, chainId, seq, hash(Number(seq))),
      { msp },
    );
  }

  async function rejection(
    call: Parameters<FakeLedger['failure']>[0],
    msp = 'Org1MSP',
  ): Promise<string> {
    const error = await ledger.failure(call, { msp });
    expect(error).toBeInstanceOf(ChaincodeError);
    return error.message;
  }

  describe('AnchorAuditHead', () => {
    it("anchors the head of the caller's chain with the transaction time and id", async () => {
      const { result, tx } = await anchor('1');
      const expected: AuditHead = {
        organization: 'Org1MSP',
        chainId: 'access-log',
        seq: 1,
        headHash: hash(1),
        txId: tx.txId,
        anchoredAt: '2025-01-15T09:30:00.000Z',
      };
      expect(result).toEqual(expected);
      expect(ledger.read(KEYS.auditHead, ['Org1MSP', 'access-log'])).toEqual(expected);
    });

    it('emits exactly one AuditHeadAnchored event carrying the head', async () => {
      const { result, tx } = await anchor('1');
      expect(eventsOf(tx)).toEqual([{ name: AUDIT_EVENTS.anchored, payload: result }]);
      expect(AUDIT_EVENTS.anchored).toBe('AuditHeadAnchored');
    });

    it('advances the head to a later seq, also across a gap', async () => {
      await anchor('1');
      await anchor('2');
      const { result } = await anchor('40');
      expect(result.seq).toBe(40);
      expect(ledger.read<AuditHead>(KEYS.auditHead, ['Org1MSP', 'access-log'])!.seq).toBe(40);
    });

    it('rejects a seq that does not advance the chain', async () => {
      await anchor('1');
      await anchor('5');
      const same = await rejection((ctx) => audit.AnchorAuditHead(ctx, 'access-log', '5', hash(9)));
      const older = await rejection((ctx) =>
        audit.AnchorAuditHead(ctx, 'access-log', '4', hash(4)),
      );
      expect(same).toBe(
        '[CONFLICT] seq 5 does not advance chain access-log (already anchored at 5)',
      );
      expect(older).toBe(
        '[CONFLICT] seq 4 does not advance chain access-log (already anchored at 5)',
      );
    });

    it('keeps heads per organisation, so two organisations can both anchor seq 1 of a chain', async () => {
      const one = await anchor('1', 'Org1MSP');
      const two = await anchor('1', 'Org2MSP');
      expect(one.result.organization).toBe('Org1MSP');
      expect(two.result.organization).toBe('Org2MSP');
      expect(ledger.read(KEYS.auditHead, ['Org1MSP', 'access-log'])).toEqual(one.result);
      expect(ledger.read(KEYS.auditHead, ['Org2MSP', 'access-log'])).toEqual(two.result);
    });

    it('keeps chains of one organisation apart', async () => {
      await anchor('3', 'Org1MSP', 'access-log');
      const { result } = await anchor('1', 'Org1MSP', 'admin-log');
      expect(result).toMatchObject({ chainId: 'admin-log', seq: 1 });
    });

    it('keeps the chains of two instances of one organisation apart, each advancing on its own', async () => {
      const a = await anchor('40', 'Org1MSP', 'access-log.hospital-a');
      const b = await anchor('1', 'Org1MSP', 'access-log.hospital-b');
      await anchor('2', 'Org1MSP', 'access-log.hospital-b');
      expect(b.result).toMatchObject({ organization: 'Org1MSP', seq: 1 });
      expect(ledger.read(KEYS.auditHead, ['Org1MSP', 'access-log.hospital-a'])).toEqual(a.result);
      expect(
        ledger.read<AuditHead>(KEYS.auditHead, ['Org1MSP', 'access-log.hospital-b']),
      ).toMatchObject({
        seq: 2,
        headHash: hash(2),
      });
      // Instance b being behind instance a is no conflict; only its own chain's seq counts.
      const stale = await rejection((ctx) =>
        audit.AnchorAuditHead(ctx, 'access-log.hospital-b', '2', hash(7)),
      );
      expect(stale).toBe(
        '[CONFLICT] seq 2 does not advance chain access-log.hospital-b (already anchored at 2)',
      );
    });

    it.each<[string, [string, string, string], string]>([
      ['a chain id with a space', ['access log', '1', hash(1)], 'chainId'],
      ['seq 0', ['access-log', '0', hash(1)], 'seq'],
      ['a seq that is not a number', ['access-log', 'next', hash(1)], 'seq'],
      ['an uppercase head hash', ['access-log', '1', hash(0xab).toUpperCase()], 'headHash'],
      ['a head hash of 63 hex digits', ['access-log', '1', hash(1).slice(1)], 'headHash'],
    ])('rejects %s as an invalid argument naming the field', async (_case, args, field) => {
      const message = await rejection((ctx) => audit.AnchorAuditHead(ctx, ...args));
      expect(message.startsWith(`[INVALID_ARGUMENT] ${field} `)).toBe(true);
    });
  });

  describe('ListAuditHeads', () => {
    it("lists the latest head of each of an organisation's chains, and no other organisation's", async () => {
      await anchor('1', 'Org1MSP', 'access-log.hospital-a');
      await anchor('5', 'Org1MSP', 'access-log.hospital-a');
      await anchor('3', 'Org1MSP', 'access-log.hospital-b');
      await anchor('9', 'Org2MSP', 'access-log');
      const { result, tx } = await ledger.invoke<AuditHead[]>(
        (ctx) => audit.ListAuditHeads(ctx, 'Org1MSP'),
        { msp: 'Org2MSP' },
      );
      expect(result.map((h) => [h.organization, h.chainId, h.seq])).toEqual([
        ['Org1MSP', 'access-log.hospital-a', 5],
        ['Org1MSP', 'access-log.hospital-b', 3],
      ]);
      expect(tx.stub.putState.called).toBe(false);
    });

    it('lists nothing for an organisation that anchored nothing', async () => {
      await anchor('1', 'Org1MSP');
      const { result } = await ledger.invoke<AuditHead[]>((ctx) =>
        audit.ListAuditHeads(ctx, 'Org2MSP'),
      );
      expect(result).toEqual([]);
    });

    it('rejects a malformed organisation id', async () => {
      const message = await rejection((ctx) => audit.ListAuditHeads(ctx, 'Org 1'));
      expect(message.startsWith('[INVALID_ARGUMENT] organization ')).toBe(true);
    });
  });

  describe('GetAuditHead', () => {
    it("reads an organisation's latest head of a chain", async () => {
      await anchor('1', 'Org1MSP');
      await anchor('2', 'Org1MSP');
      await anchor('7', 'Org2MSP');
      const { result, tx } = await ledger.invoke<AuditHead>((ctx) =>
        audit.GetAuditHead(ctx, 'Org1MSP', 'access-log'),
      );
      expect(result).toMatchObject({ organization: 'Org1MSP', seq: 2, headHash: hash(2) });
      expect(tx.stub.putState.called).toBe(false);
    });

    it("lets any organisation read another organisation's head", async () => {
      await anchor('3', 'Org2MSP');
      const { result } = await ledger.invoke<AuditHead>(
        (ctx) => audit.GetAuditHead(ctx, 'Org2MSP', 'access-log'),
        { msp: 'Org1MSP' },
      );
      expect(result.seq).toBe(3);
    });

    it('rejects reading a chain that has no anchored head', async () => {
      await anchor('1', 'Org1MSP');
      const message = await rejection((ctx) => audit.GetAuditHead(ctx, 'Org2MSP', 'access-log'));
      expect(message).toBe('[NOT_FOUND] chain access-log of Org2MSP has no anchored head');
    });

    it('rejects a malformed organisation id', async () => {
      const message = await rejection((ctx) => audit.GetAuditHead(ctx, 'Org 1', 'access-log'));
      expect(message.startsWith('[INVALID_ARGUMENT] organization ')).toBe(true);
    });
  });
});
