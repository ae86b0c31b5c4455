// The Fabric adapter against a real two-organisation network (see fabric-network/network.sh):
// transactions endorsed by both orgs' peers and ordered by Raft, chaincode rejections mapped
// to the API's errors, events from a checkpoint, and an unreachable peer within its deadline.
import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { createServer, Server, Socket } from 'node:net';
import { AddressInfo } from 'node:net';
import { CustodiaError } from '../../src/common/errors';
import { freePort } from '../../src/common/free-port';
import { FabricLedger } from '../../src/ledger/fabric';
import { Checkpoint, ContractName, LedgerEvent } from '../../src/ledger/ledger.port';
import { orgConfig } from './network';
import { errorOf } from '../helpers/errors';

interface Grant {
  id: string;
  patientId: string;
  status: string;
  writtenBy: string;
  txId: string;
}

function grantJson(id: string, patientId = `patient-${id}`): string {
  return JSON.stringify({
    id,
    patientId,
    grantee: { type: 'ORGANIZATION', id: 'org1' },
    purpose: 'TREATMENT',
    actions: ['READ'],
    resourceTypes: [],
    categories: [],
  });
}

const newId = () => `g-${randomUUID()}`;

/** Collects events from `after` until `done` says so (or the time limit passes). */
async function collect(
  ledger: FabricLedger,
  after: Checkpoint | null,
  done: (events: LedgerEvent[]) => boolean,
  limitMs = 30_000,
): Promise<LedgerEvent[]> {
  const events: LedgerEvent[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const subscription = ledger.subscribe(after, async (event) => {
    events.push(event);
    if (done(events)) finish();
  });
  const timer = setTimeout(finish, limitMs);
  await finished;
  clearTimeout(timer);
  await subscription.close();
  return events;
}

const order = (a: Checkpoint, b: Checkpoint) =>
  a.blockNumber - b.blockNumber || a.txIndex - b.txIndex;

describe('FabricLedger on a native Fabric network', () => {
  let hospital: FabricLedger;
  let research: FabricLedger;

  beforeAll(() => {
    hospital = new FabricLedger(orgConfig(1));
    research = new FabricLedger(orgConfig(2));
  });

  afterAll(async () => {
    await hospital?.close();
    await research?.close();
  });

  it('answers a ping', async () => {
    await expect(hospital.ping()).resolves.toBeUndefined();
  });

  it('commits a grant through one org and reads it through the other', async () => {
    const id = newId();
    const submitted = await hospital.submit<Grant>('consent', 'GrantConsent', [grantJson(id)]);
    expect(submitted.txId).toMatch(/^[0-9a-f]{64}$/);
    expect(submitted.blockNumber).toBeGreaterThan(0);
    expect(submitted.result).toMatchObject({ id, status: 'ACTIVE', writtenBy: 'Org1MSP' });
    expect(submitted.result.txId).toBe(submitted.txId);

    // Committed means committed on every peer of the channel that has the block; the
    // research org's peer may be a block behind the hospital's for a moment.
    let read: Grant | undefined;
    for (let i = 0; i < 50 && !read; i++) {
      read = await research.evaluate<Grant>('consent', 'GetConsent', [id]).catch(() => undefined);
    }
    expect(read).toMatchObject({ id, status: 'ACTIVE', txId: submitted.txId });
    await expect(hospital.evaluate<Grant>('consent', 'GetConsent', [id])).resolves.toMatchObject({
      id,
      status: 'ACTIVE',
    });
  });

  it("serves the chaincode's metadata through fabric-contract-api's system contract", async () => {
    // Not one of the API's contracts, so not in ContractName: asked for by its Fabric name.
    const system = 'org.hyperledger.fabric' as ContractName;
    const metadata = await hospital.evaluate<{ contracts: Record<string, unknown> }>(
      system,
      'GetMetadata',
      [],
    );
    expect(Object.keys(metadata.contracts)).toEqual(
      expect.arrayContaining(['consent', 'records', 'training', 'audit']),
    );
  });

  it('keeps the audit chains of two API instances of one organisation apart', async () => {
    const run = randomUUID().slice(0, 8);
    const [a, b] = [`access-log.site-a-${run}`, `access-log.site-b-${run}`];
    await hospital.submit('audit', 'AnchorAuditHead', [a, '40', 'a0'.repeat(32)]);
    // Instance b is far behind a, which is no conflict: each chain advances on its own.
    await hospital.submit('audit', 'AnchorAuditHead', [b, '1', 'b0'.repeat(32)]);
    await expect(hospital.evaluate('audit', 'GetAuditHead', ['Org1MSP', b])).resolves.toMatchObject(
      { organization: 'Org1MSP', chainId: b, seq: 1 },
    );
    let heads: { chainId: string; seq: number }[] = [];
    for (let i = 0; i < 50 && heads.length < 2; i++) {
      heads = (
        await research.evaluate<{ chainId: string; seq: number }[]>('audit', 'ListAuditHeads', [
          'Org1MSP',
        ])
      ).filter((h) => h.chainId.endsWith(run));
    }
    expect(heads.map((h) => [h.chainId, h.seq])).toEqual([
      [a, 40],
      [b, 1],
    ]);
  });

  describe('maps chaincode rejections to the API errors', () => {
    it('answers NOT_FOUND for a grant that does not exist', async () => {
      const e = await errorOf(hospital.evaluate('consent', 'GetConsent', [newId()]));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toMatch(/does not exist/);
    });

    it('answers BAD_USER_INPUT for a malformed grant, and commits nothing', async () => {
      const id = newId();
      const bad = JSON.stringify({ ...JSON.parse(grantJson(id)), purpose: 'MARKETING' });
      const e = await errorOf(hospital.submit('consent', 'GrantConsent', [bad]));
      expect(e.code).toBe('BAD_USER_INPUT');
      expect(e.message).toMatch(/grant\.purpose/);
      expect((await errorOf(hospital.evaluate('consent', 'GetConsent', [id]))).code).toBe(
        'NOT_FOUND',
      );
    });

    it('answers CONFLICT for a grant id that is taken', async () => {
      const id = newId();
      await hospital.submit('consent', 'GrantConsent', [grantJson(id)]);
      const e = await errorOf(research.submit('consent', 'GrantConsent', [grantJson(id)]));
      expect(e.code).toBe('CONFLICT');
      expect(e.message).toMatch(/already exists/);
    });

    it('answers NOT_FOUND when revoking a grant that does not exist', async () => {
      const e = await errorOf(hospital.submit('consent', 'RevokeConsent', [newId()]));
      expect(e.code).toBe('NOT_FOUND');
    });

    it('answers BAD_USER_INPUT for a transaction the chaincode does not have', async () => {
      const e = await errorOf(hospital.evaluate('consent', 'NoSuchTransaction', []));
      expect(e.code).toBe('BAD_USER_INPUT');
      expect(e.message).toMatch(/consent:NoSuchTransaction is not a transaction/);
    });
  });

  it('lets exactly one of two concurrent revocations of a grant commit; the other gets CONFLICT', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const id = newId();
    await hospital.submit('consent', 'GrantConsent', [grantJson(id)]);
    // Both endorse against the ACTIVE grant and land in one block: the second is invalidated
    // with MVCC_READ_CONFLICT, proposed again, and then refused by the chaincode.
    const outcomes = await Promise.allSettled([
      hospital.submit('consent', 'RevokeConsent', [id]),
      research.submit('consent', 'RevokeConsent', [id]),
    ]);
    const committed = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o) => o.status === 'rejected');
    expect(committed).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(((refused[0] as PromiseRejectedResult).reason as CustodiaError).code).toBe('CONFLICT');
    await expect(hospital.evaluate('consent', 'GetConsent', [id])).resolves.toMatchObject({
      status: 'REVOKED',
    });
    // The loser was proposed again because its validation code proved it had not committed.
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ reason: 'MVCC_READ_CONFLICT', attempt: 1 }),
      'proposing again',
    );
    warn.mockRestore();
  });

  describe('chaincode events', () => {
    it('delivers committed events in order, and from a checkpoint only those after it', async () => {
      const patientId = `patient-${randomUUID()}`;
      // Submitted together, several land in one block: the checkpoint must tell them apart.
      const ids = Array.from({ length: 6 }, newId);
      const submitted = await Promise.all(
        ids.map((id) => hospital.submit('consent', 'GrantConsent', [grantJson(id, patientId)])),
      );
      const ours = new Set(submitted.map((s) => s.txId));

      const all = await collect(
        hospital,
        null,
        (events) => events.filter((e) => ours.has(e.txId)).length === ours.size,
      );
      for (let i = 1; i < all.length; i++) expect(order(all[i - 1], all[i])).toBeLessThan(0);
      const mine = all.filter((e) => ours.has(e.txId));
      expect(mine).toHaveLength(ids.length);
      expect(mine.some((e) => e.txIndex > 0)).toBe(true); // several in one block
      for (const e of mine) {
        expect(e.name).toBe('ConsentGranted');
        expect(e.payload).toMatchObject({ patientId, status: 'ACTIVE', txId: e.txId });
        expect(e.blockNumber).toBe(submitted.find((s) => s.txId === e.txId)!.blockNumber);
      }

      // Resume after the second of ours, possibly in the middle of a block.
      const checkpoint = { blockNumber: mine[1].blockNumber, txIndex: mine[1].txIndex };
      const expected = all.filter((e) => order(e, checkpoint) > 0);
      const resumed = await collect(
        research,
        checkpoint,
        (events) => events.filter((e) => ours.has(e.txId)).length === ours.size - 2,
      );
      expect(resumed.map((e) => e.txId)).toEqual(
        expected.map((e) => e.txId).slice(0, resumed.length),
      );
      expect(resumed.filter((e) => ours.has(e.txId)).map((e) => e.txId)).toEqual(
        mine.slice(2).map((e) => e.txId),
      );
      // Both organisations' peers number the events of a block alike.
      expect(resumed.map(({ blockNumber, txIndex }) => ({ blockNumber, txIndex }))).toEqual(
        expected
          .slice(0, resumed.length)
          .map(({ blockNumber, txIndex }) => ({ blockNumber, txIndex })),
      );
    });

    it('delivers one event at a time, the next only when the handler has finished', async () => {
      const ids = [newId(), newId(), newId()];
      const submitted = await Promise.all(
        ids.map((id) => hospital.submit('consent', 'GrantConsent', [grantJson(id)])),
      );
      const first = submitted.reduce((a, b) => (a.blockNumber <= b.blockNumber ? a : b));
      let busy = false;
      let overlapped = false;
      const seen: string[] = [];
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const subscription = hospital.subscribe(
        { blockNumber: first.blockNumber - 1, txIndex: Number.MAX_SAFE_INTEGER },
        async (event) => {
          overlapped ||= busy;
          busy = true;
          await new Promise((resolve) => setImmediate(resolve));
          seen.push(event.txId);
          busy = false;
          if (submitted.every((s) => seen.includes(s.txId))) finish();
        },
      );
      await finished;
      await subscription.close();
      expect(overlapped).toBe(false);
    });

    it('delivers an event again when the handler failed, then goes on', async () => {
      const { txId, blockNumber } = await hospital.submit('consent', 'GrantConsent', [
        grantJson(newId()),
      ]);
      const attempts: string[] = [];
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const ledger = new FabricLedger(orgConfig(1), { reconnectMs: { initial: 50, max: 200 } });
      const subscription = ledger.subscribe(
        { blockNumber: blockNumber - 1, txIndex: Number.MAX_SAFE_INTEGER },
        async (event) => {
          if (event.txId !== txId) return;
          attempts.push(event.txId);
          if (attempts.length === 1) throw new Error('the projection database is down');
          finish();
        },
      );
      await finished;
      await subscription.close();
      await ledger.close();
      expect(attempts).toEqual([txId, txId]);
    });
  });

  describe('when the ledger cannot be reached', () => {
    const deadlines = { evaluate: 1_000, endorse: 1_500, submit: 1_000, commitStatus: 2_000 };

    async function timed(promise: Promise<unknown>): Promise<{ e: CustodiaError; ms: number }> {
      const started = Date.now();
      const e = await errorOf(promise);
      return { e, ms: Date.now() - started };
    }

    it('answers LEDGER_UNAVAILABLE at once when nothing listens at the peer address', async () => {
      const closed = await freePort();
      const ledger = new FabricLedger(
        { ...orgConfig(1), peerEndpoint: `127.0.0.1:${closed}` },
        { deadlines },
      );
      try {
        const evaluated = await timed(ledger.evaluate('consent', 'GetConsent', [newId()]));
        expect(evaluated.e.code).toBe('LEDGER_UNAVAILABLE');
        expect(evaluated.e.message).toMatch(/unavailable|did not answer/);
        expect(evaluated.ms).toBeLessThan(deadlines.evaluate + 1_000);

        const submitted = await timed(
          ledger.submit('consent', 'GrantConsent', [grantJson(newId())]),
        );
        expect(submitted.e.code).toBe('LEDGER_UNAVAILABLE');
        expect(submitted.e.message).toMatch(/nothing was committed/);
        expect(submitted.ms).toBeLessThan(deadlines.endorse + 1_000);

        await expect(ledger.ping()).rejects.toMatchObject({ code: 'LEDGER_UNAVAILABLE' });
      } finally {
        await ledger.close();
      }
    });

    it('answers LEDGER_UNAVAILABLE within the deadline when the peer accepts but never answers', async () => {
      const silent = await silentServer();
      const ledger = new FabricLedger(
        { ...orgConfig(1), peerEndpoint: `127.0.0.1:${silent.port}` },
        { deadlines },
      );
      try {
        const evaluated = await timed(ledger.evaluate('consent', 'GetConsent', [newId()]));
        expect(evaluated.e.code).toBe('LEDGER_UNAVAILABLE');
        expect(evaluated.ms).toBeGreaterThanOrEqual(deadlines.evaluate - 100);
        expect(evaluated.ms).toBeLessThan(deadlines.evaluate + 1_000);

        const submitted = await timed(
          ledger.submit('consent', 'GrantConsent', [grantJson(newId())]),
        );
        expect(submitted.e.code).toBe('LEDGER_UNAVAILABLE');
        expect(submitted.ms).toBeLessThan(deadlines.endorse + 1_000);
      } finally {
        await ledger.close();
        await silent.close();
      }
    });
  });
});

/** A loopback server that accepts connections and never says a word (a hung peer). */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
