import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The embedded ledger: hash-chained blocks, the world state they produce and every key's
 * history; plus event checkpoints of ledger consumers. Keys are Fabric composite keys, which
 * contain NUL bytes, so they are stored as bytea (and sort bytewise, as in Fabric).
 */
export class EmbeddedLedger1764392400000 implements MigrationInterface {
  name = 'EmbeddedLedger1764392400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE ledger_blocks (
        number        bigint PRIMARY KEY CHECK (number >= 0),
        prev_hash     char(64) NOT NULL,
        hash          char(64) NOT NULL UNIQUE,
        -- the canonical JSON the hash covers: {number, prevHash, timestamp, txs}
        body          text NOT NULL,
        committed_at  timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE TABLE ledger_world_state (
        key           bytea PRIMARY KEY,
        value         bytea NOT NULL,
        block_number  bigint NOT NULL,
        tx_id         text NOT NULL
      )`);
    await q.query(`
      CREATE TABLE ledger_history (
        key           bytea NOT NULL,
        block_number  bigint NOT NULL,
        tx_index      integer NOT NULL,
        tx_id         text NOT NULL,
        value         bytea,
        is_delete     boolean NOT NULL,
        tx_timestamp  timestamptz NOT NULL,
        PRIMARY KEY (key, block_number, tx_index)
      )`);
    await q.query(`
      CREATE TABLE ledger_checkpoints (
        consumer      text PRIMARY KEY,
        block_number  bigint NOT NULL,
        tx_index      integer NOT NULL,
        updated_at    timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE ledger_checkpoints`);
    await q.query(`DROP TABLE ledger_history`);
    await q.query(`DROP TABLE ledger_world_state`);
    await q.query(`DROP TABLE ledger_blocks`);
  }
}
