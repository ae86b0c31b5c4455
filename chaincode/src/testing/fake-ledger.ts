// A world state in memory behind a ChaincodeStub and a ClientIdentity whose methods are sinon
// fakes, as in the fabric-samples unit tests: each transaction gets its own stub, id, time and
// caller, and records what it read, wrote and emitted.
// Writes land in the shared map at once; the contracts never read their own writes, so this
// matches a peer for every transaction that succeeds, and tests assert that one that fails
// wrote nothing at all.
import { Context } from 'fabric-contract-api';
// Types only: loading fabric-shim (gRPC, protobufs) would cost each suite half a second.
import type { ChaincodeStub, ClientIdentity } from 'fabric-shim';
import { deepStrictEqual } from 'node:assert';
import * as sinon from 'sinon';

type Timestamp = ReturnType<ChaincodeStub['getTxTimestamp']>;
type PartialKeyQuery = ReturnType<ChaincodeStub['getStateByPartialCompositeKey']>;
type PagedKeyQuery = ReturnType<ChaincodeStub['getStateByPartialCompositeKeyWithPagination']>;
type KV = { namespace: string; key: string; value: Uint8Array };

/** What the contracts call on the stub; calling any other method fails loudly. */
const STUB_METHODS = [
  'getTxID',
  'getChannelID',
  'getTxTimestamp',
  'getMspID',
  'getState',
  'putState',
  'deleteState',
  'createCompositeKey',
  'splitCompositeKey',
  'getStateByPartialCompositeKey',
  'getStateByPartialCompositeKeyWithPagination',
  'setEvent',
] as const;

/** An instance of `T` whose methods `K` are sinon fakes, recording their calls. */
export type Faked<T, K extends keyof T> = T & {
  [P in K]: T[P] extends (...args: infer A) => infer R ? sinon.SinonSpy<A, R> & T[P] : never;
};
export type FakeChaincodeStub = Faked<ChaincodeStub, (typeof STUB_METHODS)[number]>;
export type FakeClientIdentity = Faked<ClientIdentity, 'getMSPID' | 'getID'>;

/** What a test needs of one transaction: the context to pass in and the stubs to assert on. */
export interface FakeTransaction {
  ctx: Context;
  stub: FakeChaincodeStub;
  identity: FakeClientIdentity;
  txId: string;
  /** The transaction's time as an ISO instant (millisecond precision). */
  at: string;
}

export interface TransactionOptions {
  /** ISO instant of the transaction timestamp; defaults to the ledger's current time. */
  at?: string;
  /** The caller's MSP id; defaults to the ledger's current caller. */
  msp?: string;
}

// Fabric's composite key encoding, as in fabric-shim's ChaincodeStub (state.spec.ts checks
// that the two agree): U+0000, the object type, then each attribute, each followed by U+0000.
const NS = '\u0000';

export function compositeKey(objectType: string, attributes: string[]): string {
  for (const part of [objectType, ...attributes]) {
    if (!part || typeof part !== 'string') {
      throw new Error('object type or attribute not a non-zero length string');
    }
  }
  return NS + [objectType, ...attributes].map((a) => a + NS).join('');
}

export function splitCompositeKey(key: string): {
  objectType: string | null;
  attributes: string[];
} {
  if (!key || key.length <= 1 || key.charAt(0) !== NS) return { objectType: null, attributes: [] };
  const parts = key.substring(1).split(NS);
  const objectType = parts[0];
  parts.pop();
  return { objectType, attributes: parts.slice(1) };
}

/** Fabric orders keys by their UTF-8 bytes. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** An iterator over `rows`, as fabric-shim's state query iterators behave. */
function stateIterator(rows: KV[]) {
  let i = 0;
  return {
    next: async () =>
      i < rows.length
        ? { value: rows[i++], done: false }
        : { value: undefined as unknown as KV, done: true },
    close: sinon.fake.resolves(undefined),
  };
}

/** The keys under a prefix in key order, as the iterator (and async iterable) fabric-shim returns. */
function partialKeyQuery(state: Map<string, Uint8Array>, prefix: string): PartialKeyQuery {
  const rows: KV[] = [...state.keys()]
    .filter((k) => k.startsWith(prefix))
    .sort(byteOrder)
    .map((key) => ({ namespace: 'custodia', key, value: state.get(key)! }));
  const iterator = stateIterator(rows);
  return Object.assign(Promise.resolve(iterator), {
    async *[Symbol.asyncIterator]() {
      yield* rows;
    },
  }) as PartialKeyQuery;
}

/**
 * One page of the keys under a prefix, starting at `bookmark` (a key; '' for the first page),
 * with the bookmark of the next page: the key after this page's last, as LevelDB peers return.
 */
function pagedKeyQuery(
  state: Map<string, Uint8Array>,
  prefix: string,
  pageSize: number,
  bookmark: string,
): PagedKeyQuery {
  const all = [...state.keys()]
    .filter((k) => k.startsWith(prefix) && (!bookmark || byteOrder(k, bookmark) >= 0))
    .sort(byteOrder);
  const rows: KV[] = all
    .slice(0, pageSize)
    .map((key) => ({ namespace: 'custodia', key, value: state.get(key)! }));
  const iterator = stateIterator(rows);
  const metadata = { fetchedRecordsCount: rows.length, bookmark: all[pageSize] ?? '' };
  return Object.assign(Promise.resolve({ iterator, metadata }), {
    async *[Symbol.asyncIterator]() {
      yield* rows;
    },
  }) as unknown as PagedKeyQuery;
}

export class FakeLedger {
  readonly state = new Map<string, Uint8Array>();
  private now = '2025-01-15T09:30:00.000Z';
  private msp = 'Org1MSP';
  private count = 0;

  /** Sets the timestamp of the transactions that follow. */
  setTime(iso: string): void {
    if (Number.isNaN(Date.parse(iso))) throw new Error(`not an instant: ${iso}`);
    this.now = iso;
  }

  /** Sets the MSP id of the caller of the transactions that follow. */
  setCaller(msp: string): void {
    this.msp = msp;
  }

  /** A copy of the world state, to compare before and after a call. */
  snapshot(): Map<string, string> {
    return new Map([...this.state].map(([k, v]) => [k, Buffer.from(v).toString('hex')]));
  }

  /** The JSON value stored under a composite key, or undefined. */
  read<T = unknown>(objectType: string, attributes: string[]): T | undefined {
    const bytes = this.state.get(compositeKey(objectType, attributes));
    return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : undefined;
  }

  /** A fresh stub and identity for one transaction. */
  transaction(options: TransactionOptions = {}): FakeTransaction {
    const at = new Date(Date.parse(options.at ?? this.now)).toISOString();
    const msp = options.msp ?? this.msp;
    const txId = `tx${String(++this.count).padStart(4, '0')}`;
    const millis = Date.parse(at);
    const seconds = Math.floor(millis / 1000);
    const nanos = (millis - seconds * 1000) * 1e6;
    const state = this.state;

    // Sinon fakes for what the contracts use: sinon.createStubInstance would need fabric-shim
    // loaded and stubs all ~60 methods, which costs milliseconds per transaction.
    const fakes: { [K in (typeof STUB_METHODS)[number]]: ChaincodeStub[K] } = {
      getTxID: () => txId,
      getChannelID: () => 'custodia',
      getTxTimestamp: () => ({
        // Long in fabric-shim: the contracts only call toString() on it.
        seconds: { toString: () => String(seconds) } as unknown as Timestamp['seconds'],
        nanos,
      }),
      getMspID: () => msp,
      getState: async (key) => state.get(key) ?? new Uint8Array(0),
      putState: async (key, value) => {
        state.set(key, Buffer.from(value));
      },
      deleteState: async (key) => {
        state.delete(key);
      },
      createCompositeKey: compositeKey,
      splitCompositeKey: (key) =>
        splitCompositeKey(key) as ReturnType<ChaincodeStub['splitCompositeKey']>,
      getStateByPartialCompositeKey: (objectType, attributes) =>
        partialKeyQuery(state, compositeKey(objectType, attributes)),
      getStateByPartialCompositeKeyWithPagination: (objectType, attributes, pageSize, bookmark) =>
        pagedKeyQuery(state, compositeKey(objectType, attributes), pageSize, bookmark ?? ''),
      setEvent: () => undefined,
    };
    const stub = {} as FakeChaincodeStub;
    for (const name of STUB_METHODS) {
      Object.assign(stub, { [name]: sinon.fake(fakes[name] as (...args: never[]) => unknown) });
    }

    const identity = {
      getMSPID: sinon.fake.returns(msp),
      getID: sinon.fake.returns(`x509::/OU=client/CN=user1@${msp}::/CN=ca.${msp}`),
    } as unknown as FakeClientIdentity;

    const ctx = new Context();
    ctx.stub = stub;
    ctx.clientIdentity = identity;
    return { ctx, stub, identity, txId, at };
  }

  /** Runs one transaction that must succeed; its result is the parsed JSON it returned. */
  async invoke<T>(
    call: (ctx: Context) => Promise<string>,
    options?: TransactionOptions,
  ): Promise<{ result: T; tx: FakeTransaction }> {
    const tx = this.transaction(options);
    const result = JSON.parse(await call(tx.ctx)) as T;
    return { result, tx };
  }

  /**
   * Runs one transaction that must fail, checks that it wrote, deleted and emitted nothing
   * and left the world state as it was, and returns its error.
   */
  async failure(
    call: (ctx: Context) => Promise<unknown>,
    options?: TransactionOptions,
  ): Promise<Error> {
    const tx = this.transaction(options);
    const before = this.snapshot();
    let error: unknown;
    try {
      await call(tx.ctx);
    } catch (e) {
      error = e;
    }
    if (!(error instanceof Error)) throw new Error('expected the transaction to fail');
    assertNothingWritten(tx);
    deepStrictEqual(this.snapshot(), before);
    return error;
  }
}

/** The events a transaction set, with their payloads parsed. */
export function eventsOf(tx: FakeTransaction): { name: string; payload: unknown }[] {
  return tx.stub.setEvent.getCalls().map((c) => ({
    name: c.args[0],
    payload: JSON.parse(Buffer.from(c.args[1]).toString('utf8')),
  }));
}

/** Asserts that a transaction wrote, deleted and emitted nothing. */
export function assertNothingWritten(tx: FakeTransaction): void {
  sinon.assert.notCalled(tx.stub.putState);
  sinon.assert.notCalled(tx.stub.deleteState);
  sinon.assert.notCalled(tx.stub.setEvent);
}
