// The embedded ledger: the custodia chaincode executed in-process over PostgreSQL. Submits
// queue up and are cut into blocks; a block's transactions run one after another (so two
// transactions on the same keys are serialised), and the block, the world state it produces
// and every key's history commit in one database transaction. A transaction that throws
// leaves no trace; the others in its block commit. Committed events reach subscribers in
// order, from any checkpoint. A chain found broken at start-up is never extended: submits
// fail until someone investigates (`verify-ledger`); reads go on.
import { Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Pool, PoolClient, QueryResult } from 'pg';
import { LedgerUnavailableError } from '../../common/errors';
import {
  Checkpoint,
  ContractName,
  EventSubscription,
  Ledger,
  ledgerError,
  LedgerEvent,
  SubmitResult,
} from '../ledger.port';
import {
  argsHash,
  Block,
  BlockRow,
  BlockTx,
  checkBlock,
  encodeBlock,
  GENESIS_PREV_HASH,
  LedgerBreak,
  sha256Hex,
  StoredBlock,
} from './block';
import {
  compareKeys,
  execute,
  StateReader,
  toBlockTx,
  TxInput,
  TxOutcome,
  UnknownTransactionError,
} from './chaincode-host';
import { HeadFileInvalid, LedgerHeadFile } from './head-file';
import { LedgerSeal } from './seal';
import { ReadSet, SnapshotReader } from './snapshot-reader';
import { lastWrite, StateVersions } from './state-versions';
import { verifyEmbeddedLedger } from './verify';

/** Most transactions in one block. */
const MAX_BLOCK_TXS = 500;
/** Blocks committed here that a subscription keeps until it delivers them (then it reads). */
const MAX_REMEMBERED_BLOCKS = 32;
/** While the chain cannot be read, a subscription retries after 0.1 s, doubling up to 5 s. */
const READ_RETRY_FIRST_MS = 100;
const READ_RETRY_MAX_MS = 5_000;
/** Serialises writers across processes sharing one database (a single chain). */
const WRITER_LOCK = 0x637573746f646961n; // "custodia"
/** Blocks read per query when walking the chain. */
const WALK_PAGE = 200;
/** Keys named in one report of world-state rows put back. */
const REPORTED_KEYS = 10;
/** Times a world-state row that is not the version the chain left is read again. */
const RECHECKS = 2;
/** A world-state row to read again before it is believed. */
const DOUBT = Symbol('doubt');

interface Pending {
  input: TxInput;
  resolve(r: SubmitResult<unknown>): void;
  reject(e: unknown): void;
}

export interface EmbeddedLedgerOptions {
  /** The MSP-like identity of this organisation, recorded as each transaction's creator. */
  organization: string;
  /**
   * Seals every block and world-state row written, and refuses any read without a valid seal
   * (the API always passes one; bare ledgers in ledger benchmarks and tests may not).
   */
  seal?: LedgerSeal;
  /** Told (ids only) when a block or state row fails its seal. */
  onTamper?: (what: string, ids: Record<string, string | number>) => void;
  /** Where the head this data directory saw committed is kept (see LedgerHeadFile). */
  headFile?: LedgerHeadFile;
}

/** A block or state row that this organisation's API did not write. */
class LedgerTampered extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerTampered';
  }
}

export class EmbeddedLedger implements Ledger {
  private readonly logger = new Logger('EmbeddedLedger');
  private readonly queue: Pending[] = [];
  private draining = false;
  private readonly committed = new EventEmitter();
  private outage = false;
  private closed = false;
  /** Why the chain must not be extended, once its tip was found broken. */
  private broken?: string;
  /**
   * Which block last wrote each key, once `open` has walked the chain: every world-state row
   * read is then checked to be that version (a sealed row saved earlier and put back is not).
   */
  private versions?: StateVersions;
  /** The catch-up with blocks appended by another process, when one is under way. */
  private catchingUp: Promise<void> | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly options: EmbeddedLedgerOptions,
  ) {
    this.committed.setMaxListeners(0);
  }

  submit<T>(contract: ContractName, fn: string, args: string[]): Promise<SubmitResult<T>> {
    if (this.broken) return Promise.reject(chainBroken(this.broken));
    if (this.outage || this.closed) return Promise.reject(unavailable());
    return new Promise<SubmitResult<unknown>>((resolve, reject) => {
      this.queue.push({ input: this.proposal(contract, fn, args), resolve, reject });
      if (!this.draining) void this.drain();
    }) as Promise<SubmitResult<T>>;
  }

  async evaluate<T>(contract: ContractName, fn: string, args: string[]): Promise<T> {
    if (this.outage || this.closed) throw unavailable();
    const input = this.proposal(contract, fn, args);
    let outcome;
    try {
      outcome = await execute(input, this.reader(this.pool), 'evaluate');
    } catch (e) {
      throw this.mapError(e);
    }
    return JSON.parse(outcome.result) as T;
  }

  subscribe(
    after: Checkpoint | null,
    handler: (event: LedgerEvent) => Promise<void>,
  ): EventSubscription {
    let cursor: Checkpoint = after ?? { blockNumber: -1, txIndex: Number.MAX_SAFE_INTEGER };
    let open = true;
    let wake: (() => void) | undefined;
    /** The last block whose events were all delivered (or lay before the cursor), once known. */
    let through: number | undefined;
    /** Blocks this ledger committed since: the next one in line is delivered without a read. */
    const committed: Block[] = [];
    const onCommit = (block: Block) => {
      committed.push(block);
      if (committed.length > MAX_REMEMBERED_BLOCKS) committed.shift();
      wake?.();
    };
    this.committed.on('block', onCommit);
    /** Waits `ms`, or less if the subscription is closed meanwhile. */
    const pause = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    /** Delivers the block's events past the cursor; false when closed part-way. */
    const deliver = async (block: Block): Promise<boolean> => {
      for (const [txIndex, tx] of block.txs.entries()) {
        if (!open) return false;
        const beyond =
          block.number > cursor.blockNumber ||
          (block.number === cursor.blockNumber && txIndex > cursor.txIndex);
        if (!beyond) continue;
        if (tx.event) await handler(toEvent(block.number, txIndex, tx));
        cursor = { blockNumber: block.number, txIndex };
      }
      through = block.number;
      return true;
    };
    /** The committed block right after `through`, if this ledger committed it (older ones dropped). */
    const nextCommitted = (): Block | undefined => {
      if (through === undefined) return undefined;
      while (committed.length && committed[0].number <= through) committed.shift();
      return committed[0]?.number === through + 1 ? committed.shift() : undefined;
    };
    const done = (async () => {
      // A checkpoint beyond the chain's last block was written by no consumer that applied
      // those blocks (the checkpoint row was altered): delivering from it would skip every
      // event up to there, so delivery starts over (consumers apply an event again harmlessly).
      if (after && this.versions) {
        await this.catchUp().catch(() => undefined);
        if (after.blockNumber > this.versions.head) {
          this.options.onTamper?.(
            "a ledger event checkpoint lies beyond the chain's last block; events are delivered again from the first block",
            { checkpointBlock: after.blockNumber, lastBlock: this.versions.head },
          );
          cursor = { blockNumber: -1, txIndex: Number.MAX_SAFE_INTEGER };
        }
      }
      // Reading the chain fails while the database is down (restarting, say): the subscription
      // waits and reads on from its cursor, so no event is lost or delivered twice.
      for (let delay = READ_RETRY_FIRST_MS; open;) {
        // A block this ledger has just committed, next in line, needs no read back: it is the
        // very block written (and sealed) here. Anything else (a gap: a block appended by
        // another process sharing the chain) is read, and checked, from the database.
        const own = nextCommitted();
        if (own) {
          if (!(await deliver(own))) return;
          if (!committed.length) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
          continue;
        }
        let blocks;
        try {
          blocks = await this.pool.query<{
            number: string;
            hash: string;
            body: string;
            mac: Buffer | null;
          }>(
            `SELECT number, hash, body, mac FROM ledger_blocks
             WHERE number >= $1 ORDER BY number LIMIT 100`,
            [Math.max(cursor.blockNumber, 0)],
          );
          delay = READ_RETRY_FIRST_MS;
        } catch (e) {
          this.logger.warn(
            { errorType: (e as Error).name, retryInMs: delay },
            'event subscription cannot read the chain; retrying',
          );
          await pause(delay);
          wake = undefined;
          delay = Math.min(delay * 2, READ_RETRY_MAX_MS);
          continue;
        }
        if (!blocks.rows.length && cursor.blockNumber < 0) through ??= -1;
        let progressed = false;
        for (const row of blocks.rows) {
          // A block this API did not seal is never delivered: its events would reach the
          // consent projection as if the ledger had said them.
          const unsealed = this.unsealedBlock(Number(row.number), row.hash, row.body, row.mac);
          if (unsealed) {
            this.refuse(unsealed);
            return;
          }
          const before = cursor;
          if (!(await deliver(JSON.parse(row.body) as Block))) return;
          if (cursor !== before) progressed = true;
        }
        while (committed.length && committed[0].number <= (through ?? -1)) committed.shift();
        if (!progressed && open && !committed.length) {
          // Nothing new: wait for the next commit (or close), re-checking after the promise is set.
          await new Promise<void>((resolve) => {
            wake = resolve;
            void this.pool
              .query<{ n: string | null }>('SELECT max(number) AS n FROM ledger_blocks')
              .then((r) => {
                const head = r.rows[0].n === null ? -1 : Number(r.rows[0].n);
                if (head > cursor.blockNumber) resolve();
              }, resolve);
          });
          wake = undefined;
        }
      }
    })().catch((e: unknown) => {
      if (open) this.logger.error({ errorType: (e as Error).name }, 'event subscription stopped');
    });
    return {
      close: async () => {
        open = false;
        this.committed.off('block', onCommit);
        wake?.();
        await done;
      },
    };
  }

  /**
   * Seals the blocks and world state written before seals existed, once: only while no block
   * is sealed yet, and only after a full check of the chain, its state and its history.
   * Returns the problem that stopped it, or null.
   */
  async sealLegacy(): Promise<string | null> {
    const seal = this.options.seal;
    if (!seal) return null;
    const sealed = await this.pool.query(
      'SELECT 1 FROM ledger_blocks WHERE mac IS NOT NULL LIMIT 1',
    );
    if (sealed.rowCount) return null;
    const blocks = await this.pool.query<{ number: string; hash: string }>(
      'SELECT number, hash FROM ledger_blocks ORDER BY number',
    );
    if (!blocks.rowCount) return null;
    const report = await verifyEmbeddedLedger(this.pool);
    if (report.problems.length) {
      this.broken = `not sealed, as its check found: ${report.problems[0]}`;
      return this.broken;
    }
    await this.pool.query(
      `UPDATE ledger_blocks b SET mac = u.mac FROM unnest($1::bigint[], $2::bytea[]) AS u(n, mac)
       WHERE b.number = u.n`,
      [
        blocks.rows.map((b) => b.number),
        blocks.rows.map((b) => seal.block(Number(b.number), b.hash)),
      ],
    );
    const state = await this.pool.query<{
      key: Buffer;
      value: Buffer;
      block_number: string;
      tx_id: string;
    }>('SELECT key, value, block_number, tx_id FROM ledger_world_state');
    await this.pool.query(
      `UPDATE ledger_world_state w SET mac = u.mac FROM unnest($1::bytea[], $2::bytea[]) AS u(k, mac)
       WHERE w.key = u.k`,
      [
        state.rows.map((r) => r.key),
        state.rows.map((r) => seal.state(r.key, r.value, Number(r.block_number), r.tx_id)),
      ],
    );
    this.logger.warn({ blocks: blocks.rowCount }, 'embedded ledger sealed after a full check');
    return null;
  }

  /**
   * Start-up, before anything is committed: seals a chain written before seals existed, walks
   * every block (hash chain and seals), learns which block last wrote each key, checks that
   * the chain reaches the head this data directory recorded, and puts back the world-state
   * rows that differ from what the blocks wrote, reporting each. From then on every row read
   * is checked to be the version the blocks left. Returns the problem that stops the chain
   * being extended, or null.
   */
  async open(): Promise<string | null> {
    const legacy = await this.sealLegacy();
    if (legacy) return legacy;
    const versions = new StateVersions();
    const walked = await this.walk(this.pool, versions);
    if (walked) return this.stop(walked);
    const rolledBack = await this.rolledBack(versions.head);
    if (rolledBack) return this.stop(rolledBack);
    const problem = await this.restoreWorldState(versions);
    if (problem) return this.stop(problem);
    this.versions = versions;
    if (versions.headHash !== null) {
      this.options.headFile?.record({ number: versions.head, hash: versions.headHash });
    }
    return null;
  }

  /**
   * Judges every row read by `versions`, a walk of the chain made elsewhere (verify-ledger's),
   * without putting anything back: what is read is what the blocks wrote.
   */
  adopt(versions: StateVersions): void {
    this.versions = versions;
  }

  /**
   * Why the chain (ending at block `last`, or the stored one's end) is not the one this data
   * directory saw committed: it ends before the recorded head, or holds another block there.
   * Null when it reaches the head, or when no head is recorded.
   */
  async rolledBack(last?: number): Promise<string | null> {
    let recorded;
    try {
      recorded = await this.options.headFile?.read();
    } catch (e) {
      if (e instanceof HeadFileInvalid) return e.message;
      throw e;
    }
    if (!recorded) return null;
    const { rows } = await this.pool.query<{ hash: string; last: string | null }>(
      `SELECT (SELECT hash FROM ledger_blocks WHERE number = $1) AS hash,
              (SELECT max(number) FROM ledger_blocks) AS last`,
      [recorded.number],
    );
    const end = last ?? (rows[0].last === null ? -1 : Number(rows[0].last));
    if (recorded.number <= end && rows[0].hash === recorded.hash) return null;
    const file = this.options.headFile?.path;
    return (
      (recorded.number > end
        ? `the chain ends at block ${end}, but this data directory saw block ${recorded.number} committed: its newest blocks were deleted (rolled back)`
        : `block ${recorded.number} is not the block this data directory saw committed: the chain was rewritten from there`) +
      `; only if this database was replaced on purpose, delete ${file}`
    );
  }

  /** Marks the chain broken and returns the problem (start-up's caller reports it, once). */
  private stop(problem: string): string {
    this.broken ??= problem;
    return problem;
  }

  /**
   * Walks the blocks after `versions`' head through `db`, each checked (hash, link, seal)
   * before it is applied. Returns the first break, or null.
   */
  private async walk(db: Pool | PoolClient, versions: StateVersions): Promise<string | null> {
    for (;;) {
      const { rows } = await db.query<BlockRow>(
        `SELECT number, prev_hash, hash, body, mac FROM ledger_blocks
         WHERE number > $1 ORDER BY number LIMIT ${WALK_PAGE}`,
        [versions.head],
      );
      for (const r of rows) {
        // Applied meanwhile (a commit here, or another catch-up).
        if (Number(r.number) <= versions.head) continue;
        const stored: StoredBlock = {
          number: Number(r.number),
          prevHash: r.prev_hash,
          hash: r.hash,
          body: r.body,
        };
        let block: Block;
        try {
          block = checkBlock(stored, versions.head + 1, versions.headHash ?? GENESIS_PREV_HASH, {
            canonicalForm: !this.options.seal,
          });
        } catch (e) {
          if (e instanceof LedgerBreak) return e.message;
          throw e;
        }
        const unsealed = this.unsealedBlock(stored.number, stored.hash, stored.body, r.mac);
        if (unsealed) return unsealed;
        versions.apply(block, stored.hash);
      }
      if (rows.length < WALK_PAGE) return null;
    }
  }

  /**
   * Puts back, under the writer lock, every world-state row that is not what the blocks left:
   * a stale version, a row for a key no block left written, a missing row. Reported with the
   * keys (hex) of the first few. Returns a break met on the way, or null.
   */
  private async restoreWorldState(versions: StateVersions): Promise<string | null> {
    const client = await this.pool.connect();
    try {
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK.toString()})`);
      // Blocks another process committed while the chain was walked.
      const behind = await this.walk(client, versions);
      if (behind) {
        await client.query('ROLLBACK');
        return behind;
      }
      const { rows } = await client.query<{ key: Buffer; block_number: string }>(
        'SELECT key, block_number FROM ledger_world_state',
      );
      const wrong = new Map<string, number | undefined>();
      const present = new Set<string>();
      for (const row of rows) {
        const key = row.key.toString('utf8');
        present.add(key);
        const writer = versions.writer(key);
        if (writer !== Number(row.block_number)) wrong.set(key, writer);
      }
      for (const [key, writer] of versions.keys()) {
        if (!present.has(key)) wrong.set(key, writer);
      }
      if (wrong.size) {
        const values = await this.writtenValues(client, wrong);
        await this.putBack(client, values);
        this.options.onTamper?.(
          'embedded ledger world-state rows differed from what the blocks wrote; put back from the blocks',
          {
            rows: wrong.size,
            keys: [...wrong.keys()]
              .slice(0, REPORTED_KEYS)
              .map((k) => Buffer.from(k, 'utf8').toString('hex'))
              .join(','),
          },
        );
      }
      await client.query('COMMIT');
      return null;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /**
   * What the blocks left under each key (key → its writer block, none when no block left it
   * written): the value and its writing transaction, or null for no row.
   */
  private async writtenValues(
    db: Pool | PoolClient,
    writers: Map<string, number | undefined>,
  ): Promise<Map<string, { value: Buffer; block: number; txId: string } | null>> {
    const numbers = [...new Set([...writers.values()].filter((n) => n !== undefined))];
    const blocks = new Map<number, Block>();
    if (numbers.length) {
      const { rows } = await db.query<{
        number: string;
        hash: string;
        body: string;
        mac: Buffer | null;
      }>('SELECT number, hash, body, mac FROM ledger_blocks WHERE number = ANY($1::bigint[])', [
        numbers,
      ]);
      for (const r of rows) {
        // Only a block whose content hashes to its sealed hash is believed.
        if (!this.unsealedBlock(Number(r.number), r.hash, r.body, r.mac)) {
          blocks.set(Number(r.number), JSON.parse(r.body) as Block);
        }
      }
    }
    const out = new Map<string, { value: Buffer; block: number; txId: string } | null>();
    for (const [key, writer] of writers) {
      if (writer === undefined) {
        out.set(key, null);
        continue;
      }
      const block = blocks.get(writer);
      const written = block && lastWrite(block, key);
      if (typeof written?.value !== 'string') {
        throw new LedgerTampered(`block ${writer}, which last wrote a key, cannot be read back`);
      }
      out.set(key, {
        value: Buffer.from(written.value, 'base64'),
        block: writer,
        txId: written.txId,
      });
    }
    return out;
  }

  /** Writes the given world-state rows (sealed), or deletes those given as null. */
  private async putBack(
    db: PoolClient,
    rows: Map<string, { value: Buffer; block: number; txId: string } | null>,
  ): Promise<void> {
    const seal = this.options.seal;
    for (const [key, row] of rows) {
      const k = Buffer.from(key, 'utf8');
      if (!row) {
        await db.query('DELETE FROM ledger_world_state WHERE key = $1', [k]);
        continue;
      }
      await db.query(
        `INSERT INTO ledger_world_state (key, value, block_number, tx_id, mac)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
           block_number = EXCLUDED.block_number, tx_id = EXCLUDED.tx_id, mac = EXCLUDED.mac`,
        [k, row.value, row.block, row.txId, seal?.state(k, row.value, row.block, row.txId) ?? null],
      );
    }
  }

  async ping(): Promise<void> {
    if (this.broken) throw chainBroken(this.broken);
    if (this.outage) throw unavailable();
    await this.pool.query('SELECT 1 FROM ledger_blocks LIMIT 1');
  }

  /**
   * Makes the ledger refuse every call, as a peer outage would (for failure drills and tests:
   * records stay PENDING and the outbox retries).
   */
  simulateOutage(down: boolean): void {
    this.outage = down;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await new Promise((r) => this.committed.once('idle', r));
    await this.options.headFile?.flush();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BLOCK_TXS);
        await this.cutBlock(batch);
      }
    } finally {
      this.draining = false;
      this.committed.emit('idle');
    }
  }

  private async cutBlock(batch: Pending[]): Promise<void> {
    let client: PoolClient | undefined;
    let broken: Error | undefined;
    // A connection lost between two statements (the database restarting) is reported here, not
    // as an uncaught error; the statement in progress fails, and the block with it.
    const onLost = (e: Error) => (broken = e);
    const accepted: { pending: Pending; tx: BlockTx; result: string }[] = [];
    const failed: { pending: Pending; error: unknown }[] = [];
    try {
      client = await this.pool.connect();
      client.on('error', onLost);
      // Begin, take the writer lock, then read the tip: three statements run in order in one
      // round trip (the simple protocol; the lock's key is our constant, not input).
      const opened = (await client.query(
        `BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK.toString()});
         SELECT number, hash, mac FROM ledger_blocks ORDER BY number DESC LIMIT 1`,
      )) as unknown as QueryResult<{ number: string; hash: string; mac: Buffer | null }>[];
      const head = opened[2];
      const tip = head.rows[0];
      // A block appended from outside since start-up is never built upon.
      if (
        tip &&
        this.options.seal &&
        !this.options.seal.blockSealed(Number(tip.number), tip.hash, tip.mac)
      ) {
        this.refuse(
          `block ${tip.number} is not sealed by this organisation's ledger (appended from outside)`,
        );
        throw new LedgerTampered('the chain tip is not sealed');
      }
      const versions = this.versions;
      if (versions) {
        const last = tip ? Number(tip.number) : -1;
        if (last < versions.head) {
          this.refuse(
            `the chain ends at block ${last}, but block ${versions.head} was committed: its newest blocks were deleted (rolled back)`,
          );
          throw new LedgerTampered('the chain was rolled back');
        }
        // Blocks another process appended: known before this block's reads are judged.
        if (last > versions.head) await this.catchUp();
      }
      const number = head.rows.length ? Number(head.rows[0].number) + 1 : 0;
      const prevHash = head.rows.length ? head.rows[0].hash : GENESIS_PREV_HASH;
      // Every transaction of the block runs at once over the committed state, its reads
      // batched into one query per turn; then, in block order, one that read what an earlier
      // transaction of the block wrote runs again over those writes. The outcome is the one
      // running them one after another would give (the chaincode is deterministic: its
      // result depends only on its input and what it reads), at a few round trips per block
      // instead of one per read.
      const snapshot = new SnapshotReader(
        (keys) => this.readKeys(client!, keys),
        this.reader(client),
      );
      const speculated = await Promise.all(
        batch.map(async (pending) => {
          const reads = new ReadSet();
          try {
            return { reads, outcome: await execute(pending.input, reads.over(snapshot), 'submit') };
          } catch (error) {
            return { reads, error };
          }
        }),
      );
      // Writes of earlier transactions in this block, visible to later ones.
      const overlay = new Map<string, Buffer | null>();
      for (const [i, pending] of batch.entries()) {
        let run: { outcome?: TxOutcome; error?: unknown } = speculated[i];
        if (speculated[i].reads.touches(overlay)) {
          try {
            run = { outcome: await execute(pending.input, this.reader(client, overlay), 'submit') };
          } catch (error) {
            run = { error };
          }
        }
        if (!run.outcome) {
          failed.push({ pending, error: run.error });
          continue;
        }
        for (const [k, v] of run.outcome.writes) overlay.set(k, v);
        const tx = toBlockTx(pending.input, argsHash(pending.input.args), run.outcome);
        accepted.push({ pending, tx, result: run.outcome.result });
      }
      let block: Block | undefined;
      let hash: string | undefined;
      if (accepted.length) {
        block = {
          number,
          prevHash,
          timestamp: new Date().toISOString(),
          txs: accepted.map((a) => a.tx),
        };
        hash = await this.persist(client, block);
      }
      await client.query('COMMIT');
      if (block && hash) {
        this.versions?.apply(block, hash);
        this.options.headFile?.record({ number: block.number, hash });
      }
      for (const a of accepted) {
        let result: unknown;
        try {
          result = JSON.parse(a.result);
        } catch {
          result = a.result;
        }
        a.pending.resolve({ txId: a.tx.txId, blockNumber: number, result });
      }
      for (const f of failed) f.pending.reject(this.mapError(f.error));
      if (block) this.committed.emit('block', block);
    } catch (e) {
      broken ??= e as Error;
      await client?.query('ROLLBACK').catch(() => undefined);
      this.logger.error({ errorType: (e as Error).name }, 'block commit failed');
      for (const p of batch) p.reject(this.broken ? chainBroken(this.broken) : unavailable());
    } finally {
      client?.off('error', onLost);
      // After a failure the connection is dropped, never handed to the next caller.
      client?.release(broken);
    }
  }

  /**
   * Writes the block, the world state it leaves and its history in one statement (each part
   * a data-modifying CTE over disjoint rows): one round trip per block instead of four.
   */
  private async persist(client: PoolClient, block: Block): Promise<string> {
    const { body, hash } = encodeBlock(block);
    const seal = this.options.seal;
    const params: unknown[] = [
      block.number,
      block.prevHash,
      hash,
      body,
      block.timestamp,
      seal?.block(block.number, hash) ?? null,
    ];
    const parts = [
      `b AS (INSERT INTO ledger_blocks (number, prev_hash, hash, body, committed_at, mac)
             VALUES ($1, $2, $3, $4, $5, $6))`,
    ];
    const $ = (value: unknown) => `$${params.push(value)}`;
    const finalState = new Map<string, { value: string | null; txId: string }>();
    const history: unknown[][] = [];
    block.txs.forEach((tx, txIndex) => {
      for (const w of tx.writes) {
        finalState.set(w.key, { value: w.value, txId: tx.txId });
        history.push([
          Buffer.from(w.key, 'utf8'),
          block.number,
          txIndex,
          tx.txId,
          w.value === null ? null : Buffer.from(w.value, 'base64'),
          w.value === null,
          tx.timestamp,
        ]);
      }
    });
    const upserts = [...finalState].filter(([, s]) => s.value !== null);
    const deletes = [...finalState].filter(([, s]) => s.value === null);
    if (upserts.length) {
      const keys = upserts.map(([k]) => Buffer.from(k, 'utf8'));
      const values = upserts.map(([, s]) => Buffer.from(s.value!, 'base64'));
      const txIds = upserts.map(([, s]) => s.txId);
      const macs = keys.map((k, i) => seal?.state(k, values[i], block.number, txIds[i]) ?? null);
      parts.push(
        `w AS (INSERT INTO ledger_world_state (key, value, block_number, tx_id, mac)
               SELECT k, v, $1, t, m
               FROM unnest(${$(keys)}::bytea[], ${$(values)}::bytea[], ${$(txIds)}::text[],
                           ${$(macs)}::bytea[]) AS u(k, v, t, m)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                 block_number = EXCLUDED.block_number, tx_id = EXCLUDED.tx_id,
                 mac = EXCLUDED.mac)`,
      );
    }
    if (deletes.length) {
      const keys = deletes.map(([k]) => Buffer.from(k, 'utf8'));
      parts.push(`d AS (DELETE FROM ledger_world_state WHERE key = ANY(${$(keys)}::bytea[]))`);
    }
    if (history.length) {
      const col = (i: number) => history.map((h) => h[i]);
      parts.push(
        `h AS (INSERT INTO ledger_history
                 (key, block_number, tx_index, tx_id, value, is_delete, tx_timestamp)
               SELECT * FROM unnest(${$(col(0))}::bytea[], ${$(col(1))}::bigint[],
                 ${$(col(2))}::int[], ${$(col(3))}::text[], ${$(col(4))}::bytea[],
                 ${$(col(5))}::boolean[], ${$(col(6))}::timestamptz[]))`,
      );
    }
    await client.query(`WITH ${parts.join(',\n')} SELECT 1`, params);
    return hash;
  }

  /** Committed state through `db`, with this block's earlier writes laid over it. */
  private reader(db: Pool | PoolClient, overlay?: Map<string, Buffer | null>): StateReader {
    return {
      get: async (key) => {
        if (overlay?.has(key)) return overlay.get(key) ?? undefined;
        const r = await db.query<StateRowSealed>(
          'SELECT key, value, block_number, tx_id, mac FROM ledger_world_state WHERE key = $1',
          [Buffer.from(key, 'utf8')],
        );
        const value = (await this.believed(db, [key], r.rows)).get(key);
        if (value instanceof Error) throw value;
        return value;
      },
      range: async (start, end, limit) => {
        // With an overlay, a limit could cut off keys it deletes: read the whole range then.
        const bounded = limit !== undefined && !overlay?.size;
        const r = await db.query<StateRowSealed>(
          `SELECT key, value, block_number, tx_id, mac FROM ledger_world_state
           WHERE key >= $1 AND key < $2 ORDER BY key ${bounded ? 'LIMIT $3' : ''}`,
          bounded
            ? [Buffer.from(start, 'utf8'), Buffer.from(end, 'utf8'), limit]
            : [Buffer.from(start, 'utf8'), Buffer.from(end, 'utf8')],
        );
        // The rows read are checked; a row deleted from the range is not seen here (start-up
        // puts it back, verify-ledger reports it).
        const believed = await this.believed(
          db,
          r.rows.map((row) => row.key.toString('utf8')),
          r.rows,
        );
        const merged = new Map<string, Buffer>();
        for (const [k, v] of believed) {
          if (v instanceof Error) throw v;
          if (v) merged.set(k, v);
        }
        for (const [k, v] of overlay ?? []) {
          if (compareKeys(k, start) < 0 || compareKeys(k, end) >= 0) continue;
          if (v === null) merged.delete(k);
          else merged.set(k, v);
        }
        const sorted = [...merged]
          .sort(([a], [b]) => compareKeys(a, b))
          .map(([key, value]) => ({ key, value }));
        return limit === undefined ? sorted : sorted.slice(0, limit);
      },
    };
  }

  /** Committed values of `keys` in one query (a key that cannot be believed is an Error). */
  private async readKeys(db: PoolClient, keys: string[]): Promise<Map<string, Buffer | Error>> {
    const r = await db.query<StateRowSealed>(
      'SELECT key, value, block_number, tx_id, mac FROM ledger_world_state WHERE key = ANY($1::bytea[])',
      [keys.map((k) => Buffer.from(k, 'utf8'))],
    );
    const found = new Map<string, Buffer | Error>();
    for (const [key, value] of await this.believed(db, keys, r.rows)) {
      if (value !== undefined) found.set(key, value);
    }
    return found;
  }

  /**
   * What to believe each of `keys` holds, from the rows read for them: the row's value when it
   * carries this organisation's seal and, once `open` has walked the chain, is the version
   * the blocks left; undefined for no key. A row that is not (a sealed row saved earlier and
   * put back, one no block wrote) or a row missing for a key a block left written is judged
   * again after catching up with the chain and reading it afresh (a commit may have landed
   * between the read and the check); if it still is not, it is reported and the value is
   * taken from the blocks themselves. Before the walk, a row failing its seal is an Error.
   */
  private async believed(
    db: Pool | PoolClient,
    keys: string[],
    rows: StateRowSealed[],
  ): Promise<Map<string, Buffer | undefined | Error>> {
    const out = new Map<string, Buffer | undefined | Error>();
    let byKey = new Map(rows.map((row) => [row.key.toString('utf8'), row]));
    let doubtful = keys;
    for (let attempt = 0; ; attempt++) {
      const again: string[] = [];
      for (const key of doubtful) {
        const verdict = this.judge(key, byKey.get(key));
        if (verdict === DOUBT) again.push(key);
        else out.set(key, verdict);
      }
      if (!again.length) return out;
      if (attempt === RECHECKS) {
        await this.answerFromBlocks(db, again, out);
        return out;
      }
      await this.catchUp();
      const fresh = await db.query<StateRowSealed>(
        'SELECT key, value, block_number, tx_id, mac FROM ledger_world_state WHERE key = ANY($1::bytea[])',
        [again.map((k) => Buffer.from(k, 'utf8'))],
      );
      byKey = new Map(fresh.rows.map((row) => [row.key.toString('utf8'), row]));
      doubtful = again;
    }
  }

  /** A row's value if it is what the chain left under `key` (undefined: no key), else DOUBT. */
  private judge(
    key: string,
    row: StateRowSealed | undefined,
  ): Buffer | undefined | Error | typeof DOUBT {
    const seal = this.options.seal;
    const sealed =
      !row ||
      !seal ||
      seal.stateSealed(row.key, row.value, Number(row.block_number), row.tx_id, row.mac);
    if (!this.versions) {
      if (!row) return undefined;
      if (sealed) return row.value;
      this.options.onTamper?.('a world-state row of the embedded ledger fails its seal', {
        key: row.key.toString('hex'),
      });
      return new LedgerTampered('a world-state row fails its seal');
    }
    const writer = this.versions.writer(key);
    if (!row) return writer === undefined ? undefined : DOUBT;
    return sealed && writer === Number(row.block_number) ? row.value : DOUBT;
  }

  /** Reports rows that are not what the blocks left, and answers `keys` from the blocks. */
  private async answerFromBlocks(
    db: Pool | PoolClient,
    keys: string[],
    out: Map<string, Buffer | undefined | Error>,
  ): Promise<void> {
    this.options.onTamper?.(
      'embedded ledger world-state rows are not what its blocks left (stale, forged or missing); answered from the blocks',
      {
        rows: keys.length,
        keys: keys
          .slice(0, REPORTED_KEYS)
          .map((k) => Buffer.from(k, 'utf8').toString('hex'))
          .join(','),
      },
    );
    try {
      const values = await this.writtenValues(
        db,
        new Map(keys.map((k) => [k, this.versions!.writer(k)])),
      );
      for (const [k, v] of values) out.set(k, v ? v.value : undefined);
    } catch (e) {
      const error = e instanceof Error ? e : new LedgerTampered(String(e));
      for (const k of keys) out.set(k, error);
    }
  }

  /**
   * Takes in the blocks appended since the last one known here (by another process sharing
   * the chain, or committed here meanwhile), each checked; a chain found shorter than what
   * this process saw committed was rolled back. One catch-up at a time.
   */
  private catchUp(): Promise<void> {
    const versions = this.versions;
    if (!versions) return Promise.resolve();
    this.catchingUp ??= (async () => {
      try {
        const problem = await this.walk(this.pool, versions);
        if (problem) this.refuse(problem);
        const { rows } = await this.pool.query<{ n: string | null }>(
          'SELECT max(number) AS n FROM ledger_blocks',
        );
        const last = rows[0].n === null ? -1 : Number(rows[0].n);
        if (last < versions.head) {
          this.refuse(
            `the chain ends at block ${last}, but block ${versions.head} was committed: its newest blocks were deleted (rolled back)`,
          );
        }
      } finally {
        this.catchingUp = null;
      }
    })();
    return this.catchingUp;
  }

  /** Why a stored block is not this API's own (its content or its seal), or null. */
  private unsealedBlock(
    number: number,
    hash: string,
    body: string,
    mac: Buffer | null,
  ): string | null {
    const seal = this.options.seal;
    if (!seal) return null;
    if (sha256Hex(body) !== hash) return `block ${number}: its content does not match its hash`;
    if (!seal.blockSealed(number, hash, mac)) {
      return `block ${number} is not sealed by this organisation's ledger (appended from outside)`;
    }
    return null;
  }

  /** Stops extending (and reading events from) a chain found tampered with. */
  private refuse(problem: string): void {
    if (!this.broken) {
      this.broken = problem;
      this.options.onTamper?.(`embedded ledger refused: ${problem}`, {});
    }
  }

  /** A transaction as this organisation proposes it: a fresh id, now. */
  private proposal(contract: ContractName, fn: string, args: string[]): TxInput {
    return {
      txId: randomBytes(32).toString('hex'),
      contract,
      fn,
      args,
      creator: this.options.organization,
      timestamp: new Date(),
    };
  }

  private mapError(e: unknown) {
    if (e instanceof UnknownTransactionError) return ledgerError(`[INVALID_ARGUMENT] ${e.message}`);
    const mapped = ledgerError(e instanceof Error ? e.message : String(e));
    if (mapped instanceof LedgerUnavailableError) {
      this.logger.error({ errorType: (e as Error)?.name }, 'chaincode failed unexpectedly');
    }
    return mapped;
  }
}

interface StateRowSealed {
  key: Buffer;
  value: Buffer;
  block_number: string;
  tx_id: string;
  mac: Buffer | null;
}

function toEvent(blockNumber: number, txIndex: number, tx: BlockTx): LedgerEvent {
  return {
    blockNumber,
    txIndex,
    txId: tx.txId,
    name: tx.event!.name,
    payload: JSON.parse(Buffer.from(tx.event!.payload, 'base64').toString('utf8')),
  };
}

function chainBroken(problem: string): LedgerUnavailableError {
  return new LedgerUnavailableError(
    `The embedded ledger's chain is broken (${problem}); no new block will be added to it. ` +
      'Run `npx custodia verify-ledger` to investigate.',
  );
}

function unavailable(): LedgerUnavailableError {
  return new LedgerUnavailableError(
    'The ledger is unavailable; nothing was committed. Try again shortly.',
  );
}
