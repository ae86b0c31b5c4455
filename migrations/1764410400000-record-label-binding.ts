import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which format each record row uses (see src/records/crypto/record-labels.ts): the format of
 * its AEAD associated data (`binding_version`) and of the commitment anchored on the ledger
 * (`hash_version`). Existing rows are format 1 on both. Migrations hold no KEK, so the app
 * re-seals format-1 rows under format 2 at start-up; their anchors stay format 1, since a
 * ledger anchor is never rewritten. No default remains: every insert says its format.
 */
export class RecordLabelBinding1764410400000 implements MigrationInterface {
  name = 'RecordLabelBinding1764410400000';

  async up(q: QueryRunner): Promise<void> {
    for (const column of ['binding_version', 'hash_version']) {
      await q.query(
        `ALTER TABLE records ADD COLUMN ${column} smallint NOT NULL DEFAULT 1
           CHECK (${column} IN (1, 2))`,
      );
      await q.query(`ALTER TABLE records ALTER COLUMN ${column} DROP DEFAULT`);
    }
    // The start-up re-sealing finds what is left to do without scanning the table.
    await q.query(`CREATE INDEX records_unbound ON records (id) WHERE binding_version = 1`);
  }

  /** Rows already re-sealed in format 2 stay so: code before this migration cannot open them. */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX records_unbound`);
    await q.query(`ALTER TABLE records DROP COLUMN hash_version`);
    await q.query(`ALTER TABLE records DROP COLUMN binding_version`);
  }
}
