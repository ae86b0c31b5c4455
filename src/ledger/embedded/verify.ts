// `custodia verify-ledger`: re-walks the embedded ledger's hash chain, replays every block's
// writes, and compares the result with the stored world state and key history, so that a
// changed byte in any block, state row or history row is reported.
import type { Pool, PoolClient } from 'pg';
import { BlockRow, checkBlock, GENESIS_PREV_HASH, LedgerBreak, Replay, StoredBlock } from './block';
import type { LedgerSeal } from './seal';
import { StateVersions } from './state-versions';

export interface LedgerReport {
  blocks: number;
  transactions: number;
  stateKeys: number;
  historyRows: number;
  problems: string[];
  /**
   * Which block last wrote each key, as the walk found it; null when the chain broke on the
   * way (then nothing read from it can be judged by it).
   */
  versions: StateVersions | null;
}

const PAGE = 500;
const MAX_PROBLEMS = 20;

/**
 * With `seal`, every block and world-state row must also carry this organisation's seal. All
 * of it read in one snapshot: beside a running API, blocks read before a commit and world
 * state read after it would disagree about keys that nothing forged.
 */
export async function verifyEmbeddedLedger(pool: Pool, seal?: LedgerSeal): Promise<LedgerReport> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await walkLedger(client, seal);
    } finally {
      await client.query('COMMIT');
    }
  } finally {
    client.release();
  }
}

async function walkLedger(db: PoolClient, seal?: LedgerSeal): Promise<LedgerReport> {
  const report: LedgerReport = {
    blocks: 0,
    transactions: 0,
    stateKeys: 0,
    historyRows: 0,
    problems: [],
    versions: null,
  };
  let unlisted = 0;
  const problem = (p: string) => {
    if (report.problems.length < MAX_PROBLEMS) report.problems.push(p);
    else unlisted++;
  };
  const replay = new Replay();
  const versions = new StateVersions();
  let broken = false;
  let prevHash = GENESIS_PREV_HASH;
  let next = 0;
  walk: for (;;) {
    const { rows } = await db.query<BlockRow>(
      'SELECT number, prev_hash, hash, body, mac FROM ledger_blocks WHERE number >= $1 ORDER BY number LIMIT $2',
      [next, PAGE],
    );
    for (const r of rows) {
      const stored: StoredBlock = {
        number: Number(r.number),
        prevHash: r.prev_hash,
        hash: r.hash,
        body: r.body,
      };
      try {
        const block = checkBlock(stored, next, prevHash);
        if (seal && !seal.blockSealed(stored.number, stored.hash, r.mac)) {
          throw new LedgerBreak(
            `block ${stored.number} is not sealed by this organisation's ledger (appended or rewritten from outside)`,
          );
        }
        replay.apply(block);
        versions.apply(block, stored.hash);
        report.blocks++;
        report.transactions += block.txs.length;
      } catch (e) {
        if (!(e instanceof LedgerBreak)) throw e;
        problem(`${e.message}; the chain cannot be trusted from here on`);
        broken = true;
        break walk;
      }
      prevHash = stored.hash;
      next++;
    }
    if (rows.length < PAGE) break;
  }
  if (!broken) report.versions = versions;

  const state = await db.query<{
    key: Buffer;
    value: Buffer;
    block_number: string;
    tx_id: string;
    mac: Buffer | null;
  }>('SELECT key, value, block_number, tx_id, mac FROM ledger_world_state');
  report.stateKeys = state.rows.length;
  const seen = new Set<string>();
  for (const row of state.rows) {
    const keyHex = row.key.toString('hex');
    seen.add(keyHex);
    const expected = replay.state.get(keyHex);
    if (
      seal &&
      !seal.stateSealed(row.key, row.value, Number(row.block_number), row.tx_id, row.mac)
    ) {
      problem(`world state of key ${keyHex} is not sealed by this organisation's ledger`);
    }
    if (!expected) problem(`world state holds key ${keyHex} that no block wrote`);
    else if (
      expected.value !== row.value.toString('base64') ||
      expected.blockNumber !== Number(row.block_number) ||
      expected.txId !== row.tx_id
    ) {
      problem(`world state of key ${keyHex} differs from what block ${expected.blockNumber} wrote`);
    }
  }
  for (const keyHex of replay.state.keys()) {
    if (!seen.has(keyHex)) problem(`world state lacks key ${keyHex} written by the blocks`);
  }

  const history = await db.query<{
    key: Buffer;
    block_number: string;
    tx_index: number;
    tx_id: string;
    value: Buffer | null;
    is_delete: boolean;
    tx_timestamp: Date;
  }>(
    'SELECT key, block_number, tx_index, tx_id, value, is_delete, tx_timestamp FROM ledger_history',
  );
  report.historyRows = history.rows.length;
  const expectedHistory = new Map(
    replay.history.map((h) => [`${h.keyHex}/${h.blockNumber}/${h.txIndex}`, h]),
  );
  for (const row of history.rows) {
    const id = `${row.key.toString('hex')}/${row.block_number}/${row.tx_index}`;
    const h = expectedHistory.get(id);
    expectedHistory.delete(id);
    if (
      !h ||
      h.txId !== row.tx_id ||
      h.value !== (row.value === null ? null : row.value.toString('base64')) ||
      row.is_delete !== (h.value === null) ||
      new Date(h.timestamp).getTime() !== row.tx_timestamp.getTime()
    ) {
      problem(`history row ${id} differs from the blocks`);
    }
  }
  for (const id of expectedHistory.keys()) problem(`history lacks row ${id} written by the blocks`);
  if (unlisted) report.problems.push(`…and ${unlisted} more ledger problems`);
  return report;
}
