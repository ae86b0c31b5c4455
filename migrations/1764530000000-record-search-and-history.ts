import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Search and amendments. `records` keeps each record's current version and gains its search
 * index: `effective_at` (the clinical date, in plaintext: see records/search) and
 * `code_digests` (keyed hashes of its main code under a per-patient key, never the code).
 * Existing rows get `index_version` 0: their index needs the keys, which a migration does not
 * hold, so the start-up job (RecordIndexing) fills it in. `record_versions` holds superseded
 * versions, sealed and anchored as they were; they go with their record (erasure deletes it).
 */
export class RecordSearchAndHistory1764530000000 implements MigrationInterface {
  name = 'RecordSearchAndHistory1764530000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE records ADD COLUMN effective_at timestamptz`);
    await q.query(`ALTER TABLE records ADD COLUMN code_digests bytea[] NOT NULL DEFAULT '{}'`);
    await q.query(`ALTER TABLE records ADD COLUMN index_version smallint NOT NULL DEFAULT 0`);
    // Digests are per patient, so a digest alone finds one patient's rows.
    await q.query(`CREATE INDEX records_code_digests ON records USING gin (code_digests)`);
    await q.query(`CREATE INDEX records_unindexed ON records (id) WHERE index_version = 0`);
    await q.query(`
      CREATE TABLE record_versions (
        record_id        uuid NOT NULL REFERENCES records(id) ON DELETE CASCADE,
        version          integer NOT NULL CHECK (version >= 1),
        patient_id       uuid NOT NULL REFERENCES patients(id),
        resource_type    text NOT NULL,
        category         text,
        sensitivity      text NOT NULL CHECK (sensitivity IN ('NORMAL', 'RESTRICTED')),
        key_id           uuid NOT NULL REFERENCES data_keys(id),
        iv               bytea NOT NULL,
        auth_tag         bytea NOT NULL,
        ciphertext       bytea NOT NULL,
        binding_version  smallint NOT NULL,
        content_hash     char(64) NOT NULL,
        hash_version     smallint NOT NULL,
        anchor_state     text NOT NULL CHECK (anchor_state IN ('PENDING', 'ANCHORED')),
        anchored_hash    char(64),
        ledger_tx_id     text,
        created_at       timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL,
        PRIMARY KEY (record_id, version)
      )`);
    await q.query(
      `CREATE INDEX record_versions_pending ON record_versions (updated_at)
         WHERE anchor_state = 'PENDING'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE record_versions`);
    await q.query(`DROP INDEX records_unindexed`);
    await q.query(`DROP INDEX records_code_digests`);
    await q.query(`ALTER TABLE records DROP COLUMN index_version`);
    await q.query(`ALTER TABLE records DROP COLUMN code_digests`);
    await q.query(`ALTER TABLE records DROP COLUMN effective_at`);
  }
}
