// Blocks of the embedded ledger and the checks over them, as pure functions. A block's hash
// is SHA-256 over the canonical JSON of {number, prevHash, timestamp, txs}; each block names
// its predecessor's hash, so a changed byte anywhere breaks the chain from there on.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';

export const GENESIS_PREV_HASH = '0'.repeat(64);

/** One state write: a key and its new value (base64), or null for a delete. */
export interface Write {
  key: string;
  value: string | null;
}

export interface BlockTx {
  txId: string;
  contract: string;
  fn: string;
  /** sha256 of the canonical JSON of the arguments (the arguments themselves stay off-block). */
  argsHash: string;
  creator: string;
  timestamp: string;
  writes: Write[];
  event: { name: string; payload: string } | null;
}

export interface Block {
  number: number;
  prevHash: string;
  timestamp: string;
  txs: BlockTx[];
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function canonical(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('not serialisable as JSON');
  return text;
}

export function encodeBlock(block: Block): { body: string; hash: string } {
  const body = canonical(block);
  return { body, hash: sha256Hex(body) };
}

export function argsHash(args: string[]): string {
  return sha256Hex(canonical(args));
}

/** Keys are Fabric composite keys (with NUL bytes): they travel as hex of their UTF-8 bytes. */
export function keyToHex(key: string): string {
  return Buffer.from(key, 'utf8').toString('hex');
}

export function keyFromHex(hex: string): string {
  return Buffer.from(hex, 'hex').toString('utf8');
}

/** A row of ledger_blocks as read (numbers as pg returns bigints: strings). */
export interface BlockRow {
  number: string;
  prev_hash: string;
  hash: string;
  body: string;
  mac: Buffer | null;
}

export interface StoredBlock {
  number: number;
  prevHash: string;
  hash: string;
  body: string;
}

export interface StateRow {
  key: Buffer;
  value: Buffer;
  blockNumber: number;
  txId: string;
}

export interface HistoryRow {
  key: Buffer;
  blockNumber: number;
  txIndex: number;
  txId: string;
  value: Buffer | null;
  isDelete: boolean;
  timestamp: Date;
}

/**
 * Walks blocks in order and returns the first break, if any: a body whose hash or header
 * fields disagree with its row, a gap in numbering, or a link to the wrong predecessor.
 * Yields the parsed blocks so callers can replay them.
 */
export function checkBlock(
  row: StoredBlock,
  expectedNumber: number,
  prevHash: string,
  /**
   * Whether the content must be in canonical form too: the full check's. Where a block's seal
   * is checked over its hash, the hash already pins the content, and the costly re-encoding
   * is skipped.
   */
  { canonicalForm = true }: { canonicalForm?: boolean } = {},
): Block {
  if (row.number !== expectedNumber) {
    throw new LedgerBreak(`block ${expectedNumber} is missing (found ${row.number} next)`);
  }
  if (sha256Hex(row.body) !== row.hash) {
    throw new LedgerBreak(`block ${row.number}: its content does not match its hash`);
  }
  let block: Block;
  try {
    block = JSON.parse(row.body) as Block;
  } catch {
    throw new LedgerBreak(`block ${row.number}: its content is not valid JSON`);
  }
  if (canonicalForm && canonical(block) !== row.body) {
    throw new LedgerBreak(`block ${row.number}: its content is not in canonical form`);
  }
  if (block.number !== row.number || block.prevHash !== row.prevHash) {
    throw new LedgerBreak(`block ${row.number}: its header disagrees with its content`);
  }
  if (block.prevHash !== prevHash) {
    throw new LedgerBreak(`block ${row.number}: it does not link to block ${row.number - 1}`);
  }
  return block;
}

/**
 * The start-up check of the chain's tip: the last block's body hashes to its hash and it links
 * to the block before it (or to genesis). A full replay is `verify-ledger`'s job. Returns the
 * break, or null when the tip is sound.
 */
export function tipBreak(tip: StoredBlock, predecessor: StoredBlock | null): string | null {
  if (tip.number > 0 && predecessor?.number !== tip.number - 1) {
    return `block ${tip.number - 1} is missing`;
  }
  try {
    checkBlock(tip, tip.number, predecessor ? predecessor.hash : GENESIS_PREV_HASH);
    return null;
  } catch (e) {
    if (e instanceof LedgerBreak) return e.message;
    throw e;
  }
}

export class LedgerBreak extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerBreak';
  }
}

/** What replaying every block's writes in order produces: the expected state and history. */
export class Replay {
  readonly state = new Map<string, { value: string; blockNumber: number; txId: string }>();
  readonly history: {
    keyHex: string;
    blockNumber: number;
    txIndex: number;
    txId: string;
    value: string | null;
    timestamp: string;
  }[] = [];

  apply(block: Block): void {
    block.txs.forEach((tx, txIndex) => {
      for (const w of tx.writes) {
        const keyHex = keyToHex(w.key);
        if (w.value === null) this.state.delete(keyHex);
        else this.state.set(keyHex, { value: w.value, blockNumber: block.number, txId: tx.txId });
        this.history.push({
          keyHex,
          blockNumber: block.number,
          txIndex,
          txId: tx.txId,
          value: w.value,
          timestamp: tx.timestamp,
        });
      }
    });
  }
}
