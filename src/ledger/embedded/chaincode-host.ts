// Runs the custodia chaincode's contracts in-process, the way a Fabric peer would: a context
// with a stub (state, composite keys, timestamp, event) and the caller's identity.
import type { Context } from 'fabric-contract-api';
import { BlockTx, keyToHex } from './block';

// fabric-contract-api logs every decorator at info on import; keep its logger quiet here.
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'WARNING';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const chaincode = require('@custodia/chaincode') as typeof import('@custodia/chaincode');
releaseProcessHooks();

/**
 * fabric-contract-api's logger, on first load, makes the whole process log uncaught exceptions
 * and carry on (a winston handler with exitOnError false), and log every unhandled rejection
 * with its promise inspected. A peer's chaincode process may want that; this one (the API, the
 * CLI) must not: after an uncaught exception its state is unknown, and Node's own answer (print
 * and exit 1, after which the supervisor restarts it) is the safe one; an exception that
 * cannot happen before the CLI finished crashed it with exit 0. A rejection's message or value
 * may also hold PHI, which fabric's logger would print. Both hooks are removed; the module is
 * loaded once, so they are not installed again.
 */
function releaseProcessHooks(): void {
  // The copy the chaincode loaded, wherever the package manager put it.
  const from = { paths: [require.resolve('@custodia/chaincode')] };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fabricLogger = require(require.resolve('fabric-contract-api/lib/logger', from)) as {
    getLogger(name: string): { exceptions: { unhandle(): void } };
  };
  fabricLogger.getLogger('_').exceptions.unhandle();
  for (const listener of process.listeners('unhandledRejection')) {
    if (listener.name === 'loggerUnhandledRejectionFn') {
      process.off('unhandledRejection', listener);
    }
  }
}

const NS = '\x00';
const MIN_RUNE = '\u0000';
const MAX_RUNE = '\u{10ffff}';

/** Committed state as seen by one transaction: reads and ordered range scans. */
export interface StateReader {
  get(key: string): Promise<Buffer | undefined>;
  /** Entries with start <= key < end, in bytewise key order (the first `limit` of them). */
  range(start: string, end: string, limit?: number): Promise<{ key: string; value: Buffer }[]>;
}

export interface TxInput {
  txId: string;
  contract: string;
  fn: string;
  args: string[];
  creator: string;
  timestamp: Date;
}

export interface TxOutcome {
  result: string;
  writes: Map<string, Buffer | null>;
  event: { name: string; payload: Buffer } | null;
}

type TransactionFn = (ctx: Context, ...args: string[]) => Promise<string>;
interface Registered {
  instance: Record<string, unknown>;
  submit: Set<string>;
  evaluate: Set<string>;
}

const contracts = new Map<string, Registered>();
for (const C of chaincode.contracts) {
  const instance = new C() as unknown as Record<string, unknown> & { getName(): string };
  const meta = (Reflect.getMetadata('fabric:transactions', C.prototype) ?? []) as {
    name: string;
    tag: string[];
  }[];
  contracts.set(instance.getName(), {
    instance,
    submit: new Set(meta.filter((t) => t.tag.includes('SUBMIT')).map((t) => t.name)),
    evaluate: new Set(meta.filter((t) => !t.tag.includes('SUBMIT')).map((t) => t.name)),
  });
}

export class UnknownTransactionError extends Error {
  constructor(contract: string, fn: string, kind: string) {
    super(`${contract}.${fn} is not a ${kind} transaction of the custodia chaincode`);
    this.name = 'UnknownTransactionError';
  }
}

/**
 * Executes one transaction against `reader`. Writes and the event are collected, never
 * applied: the caller commits them with the block, or drops them when this throws.
 */
export async function execute(
  input: TxInput,
  reader: StateReader,
  mode: 'submit' | 'evaluate',
): Promise<TxOutcome> {
  const registered = contracts.get(input.contract);
  if (!registered || !registered[mode].has(input.fn)) {
    throw new UnknownTransactionError(input.contract, input.fn, mode);
  }
  const writes = new Map<string, Buffer | null>();
  let event: TxOutcome['event'] = null;
  const readOnly = () => {
    if (mode === 'evaluate') throw new Error('an evaluated transaction cannot write');
  };
  const seconds = Math.floor(input.timestamp.getTime() / 1000);
  const stub = {
    getTxID: () => input.txId,
    getChannelID: () => 'embedded',
    getMspID: () => input.creator,
    getTxTimestamp: () => ({
      seconds: { toString: () => String(seconds), toNumber: () => seconds },
      nanos: (input.timestamp.getTime() % 1000) * 1e6,
    }),
    getDateTimestamp: () => new Date(input.timestamp),
    getState: async (key: string) => (await reader.get(key)) ?? Buffer.alloc(0),
    putState: async (key: string, value: Uint8Array) => {
      readOnly();
      writes.set(key, Buffer.from(value));
    },
    deleteState: async (key: string) => {
      readOnly();
      writes.set(key, null);
    },
    setEvent: (name: string, payload: Uint8Array) => {
      readOnly();
      event = { name, payload: Buffer.from(payload) };
    },
    createCompositeKey: (objectType: string, attributes: string[]) =>
      NS + objectType + MIN_RUNE + attributes.map((a) => a + MIN_RUNE).join(''),
    splitCompositeKey: (key: string) => {
      const parts = key.substring(1).split(MIN_RUNE);
      return { objectType: parts[0], attributes: parts.slice(1, -1) };
    },
    getStateByPartialCompositeKey: (objectType: string, attributes: string[]) => {
      const start = NS + objectType + MIN_RUNE + attributes.map((a) => a + MIN_RUNE).join('');
      return iterator(reader.range(start, start + MAX_RUNE));
    },
    // As a LevelDB peer pages: the bookmark is the key to start the next page at ('' at the end).
    getStateByPartialCompositeKeyWithPagination: async (
      objectType: string,
      attributes: string[],
      pageSize: number,
      bookmark?: string,
    ) => {
      const prefix = NS + objectType + MIN_RUNE + attributes.map((a) => a + MIN_RUNE).join('');
      const start = bookmark && compareKeys(bookmark, prefix) > 0 ? bookmark : prefix;
      const rows = await reader.range(start, prefix + MAX_RUNE, pageSize + 1);
      const page = rows.slice(0, pageSize);
      return {
        iterator: await iterator(Promise.resolve(page)),
        metadata: { fetchedRecordsCount: page.length, bookmark: rows[pageSize]?.key ?? '' },
      };
    },
  };
  const ctx = {
    stub,
    clientIdentity: {
      getMSPID: () => input.creator,
      getID: () => `x509::/CN=${input.creator}-api::/CN=${input.creator}-ca`,
    },
  } as unknown as Context;
  const fn = registered.instance[input.fn] as TransactionFn;
  const result = await fn.call(registered.instance, ctx, ...input.args);
  return {
    result: typeof result === 'string' ? result : JSON.stringify(result ?? null),
    writes,
    event,
  };
}

function iterator(entries: Promise<{ key: string; value: Buffer }[]>) {
  let items: { key: string; value: Buffer }[] | undefined;
  let i = 0;
  return Promise.resolve({
    next: async () => {
      items ??= await entries;
      return i < items.length
        ? { value: items[i++], done: false }
        : { value: undefined as never, done: true };
    },
    close: async () => undefined,
  });
}

/** A committed transaction as it goes into a block. */
export function toBlockTx(input: TxInput, argsDigest: string, outcome: TxOutcome): BlockTx {
  return {
    txId: input.txId,
    contract: input.contract,
    fn: input.fn,
    argsHash: argsDigest,
    creator: input.creator,
    timestamp: input.timestamp.toISOString(),
    writes: [...outcome.writes].map(([key, value]) => ({
      key,
      value: value === null ? null : value.toString('base64'),
    })),
    event: outcome.event
      ? { name: outcome.event.name, payload: outcome.event.payload.toString('base64') }
      : null,
  };
}

/** Orders keys bytewise (UTF-8), as Fabric and PostgreSQL's bytea do. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export { keyToHex };
