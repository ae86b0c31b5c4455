// Real outages of the native network's processes (network.sh stop/start): the adapter answers
// LEDGER_UNAVAILABLE within its deadlines, commits nothing it cannot vouch for, and works
// again, event stream included, once the process is back.
import { randomUUID } from 'node:crypto';
import { CustodiaError } from '../../src/common/errors';
import { FabricLedger } from '../../src/ledger/fabric';
import { LedgerEvent } from '../../src/ledger/ledger.port';
import { FabricNode, networkSh, orgConfig } from './network';

const deadlines = { evaluate: 2_000, endorse: 4_000, submit: 2_000, commitStatus: 10_000 };
const SLACK_MS = 1_500;

function grantJson(id: string): string {
  return JSON.stringify({
    id,
    patientId: `patient-${id}`,
    grantee: { type: 'ORGANIZATION', id: 'org2' },
    purpose: 'TREATMENT',
    actions: ['READ'],
    resourceTypes: [],
    categories: [],
  });
}

const newId = () => `g-${randomUUID()}`;

async function failure(promise: Promise<unknown>): Promise<{ e: CustodiaError; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (e) {
    if (e instanceof CustodiaError) return { e, ms: Date.now() - started };
    throw e;
  }
  throw new Error('expected the call to fail');
}

/**
 * Right after a restart the gateway may still be reconnecting to the other org's peer; a
 * client retries a LEDGER_UNAVAILABLE, as the API's outbox does, a bounded number of times.
 */
async function eventually<T>(call: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (i >= attempts || (e as CustodiaError).code !== 'LEDGER_UNAVAILABLE') throw e;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** Stops a node for the duration of `during`, and always starts it again. */
async function withNodeDown(node: FabricNode, during: () => Promise<void>): Promise<void> {
  networkSh('stop', node);
  try {
    await during();
  } finally {
    networkSh('start', node);
  }
}

describe('FabricLedger through outages of the network', () => {
  let hospital: FabricLedger;

  beforeAll(() => {
    hospital = new FabricLedger(orgConfig(1), {
      deadlines,
      reconnectMs: { initial: 100, max: 1_000 },
    });
  });

  afterAll(async () => {
    await hospital?.close();
  });

  it('answers LEDGER_UNAVAILABLE while the orderer is down, reads still work, and commits once it is back', async () => {
    const before = newId();
    await hospital.submit('consent', 'GrantConsent', [grantJson(before)]);
    const id = newId();
    await withNodeDown('orderer', async () => {
      const { e, ms } = await failure(hospital.submit('consent', 'GrantConsent', [grantJson(id)]));
      expect(e.code).toBe('LEDGER_UNAVAILABLE');
      expect(e.message).toMatch(
        /ordering service did not accept the transaction; nothing was committed/,
      );
      expect(ms).toBeLessThan(deadlines.endorse + deadlines.submit + SLACK_MS);
      await expect(hospital.evaluate('consent', 'GetConsent', [before])).resolves.toMatchObject({
        id: before,
      });
    });
    await expect(hospital.evaluate('consent', 'GetConsent', [id])).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      eventually(() => hospital.submit('consent', 'GrantConsent', [grantJson(id)])),
    ).resolves.toMatchObject({ result: { id, status: 'ACTIVE' } });
  });

  it("answers LEDGER_UNAVAILABLE while the other org's peer is down, since both must endorse", async () => {
    const id = newId();
    await withNodeDown('peer0.org2', async () => {
      const { e, ms } = await failure(hospital.submit('consent', 'GrantConsent', [grantJson(id)]));
      expect(e.code).toBe('LEDGER_UNAVAILABLE');
      expect(e.message).toMatch(/endorse the transaction.*nothing was committed/);
      expect(ms).toBeLessThan(deadlines.endorse + SLACK_MS);
    });
    await expect(hospital.evaluate('consent', 'GetConsent', [id])).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      eventually(() => hospital.submit('consent', 'GrantConsent', [grantJson(id)])),
    ).resolves.toMatchObject({ result: { id } });
  });

  it('answers LEDGER_UNAVAILABLE while the chaincode service is down, and works once it is back', async () => {
    const id = newId();
    await withNodeDown('chaincode', async () => {
      const { e, ms } = await failure(hospital.evaluate('consent', 'GetConsent', [id]));
      expect(e.code).toBe('LEDGER_UNAVAILABLE');
      expect(ms).toBeLessThan(deadlines.evaluate + SLACK_MS);
    });
    await expect(
      eventually(() => hospital.submit('consent', 'GrantConsent', [grantJson(id)])),
    ).resolves.toMatchObject({ result: { id } });
  });

  it('resumes its event stream after its own peer restarts, losing and repeating nothing', async () => {
    const first = await hospital.submit('consent', 'GrantConsent', [grantJson(newId())]);
    const events: LedgerEvent[] = [];
    let waiting: { txId: string; resolve: () => void } | undefined;
    const delivered = (txId: string) =>
      new Promise<void>((resolve) => {
        if (events.some((e) => e.txId === txId)) resolve();
        else waiting = { txId, resolve };
      });
    const subscription = hospital.subscribe(
      { blockNumber: first.blockNumber - 1, txIndex: Number.MAX_SAFE_INTEGER },
      async (event) => {
        events.push(event);
        if (event.txId === waiting?.txId) waiting.resolve();
      },
    );
    try {
      await delivered(first.txId);
      await withNodeDown('peer0.org1', async () => {
        const { e, ms } = await failure(hospital.evaluate('consent', 'GetConsent', [newId()]));
        expect(e.code).toBe('LEDGER_UNAVAILABLE');
        expect(ms).toBeLessThan(deadlines.evaluate + SLACK_MS);
      });
      const second = await eventually(() =>
        hospital.submit('consent', 'GrantConsent', [grantJson(newId())]),
      );
      await delivered(second.txId);
    } finally {
      await subscription.close();
    }
    const txIds = events.map((e) => e.txId);
    expect(new Set(txIds).size).toBe(txIds.length);
    for (let i = 1; i < events.length; i++) {
      const [a, b] = [events[i - 1], events[i]];
      expect(
        a.blockNumber < b.blockNumber || (a.blockNumber === b.blockNumber && a.txIndex < b.txIndex),
      ).toBe(true);
    }
  });
});
