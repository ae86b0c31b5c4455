import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Seals on the embedded ledger: an HMAC under a KEK-derived key over every block and every
 * world-state row, so a block appended or a state row written straight into the database is
 * told apart from the ledger's own. Existing blocks are sealed once, after a full check of
 * the chain, at the first start after the upgrade (see EmbeddedLedger.sealLegacy).
 */
export class SealedLedger1764421200000 implements MigrationInterface {
  name = 'SealedLedger1764421200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_blocks ADD COLUMN mac bytea`);
    await q.query(`ALTER TABLE ledger_world_state ADD COLUMN mac bytea`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_world_state DROP COLUMN mac`);
    await q.query(`ALTER TABLE ledger_blocks DROP COLUMN mac`);
  }
}
