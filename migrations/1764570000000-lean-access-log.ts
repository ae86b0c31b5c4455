import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The access log keeps the indexes something reads: its sequence (the chain's order, and the
 * collision that tells an appender another process got ahead) and a patient's events. The
 * UNIQUE constraints on `id` and `hash` go: nothing looks an event up by either, ids are random
 * UUIDs, and a duplicated or altered event already breaks the hash chain that `verify-ledger`
 * and the patient's own check walk. Each one cost every append an insertion at a random place
 * in a B-tree (a training round appends one event per patient).
 */
export class LeanAccessLog1764570000000 implements MigrationInterface {
  name = 'LeanAccessLog1764570000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE access_events
        DROP CONSTRAINT access_events_id_key,
        DROP CONSTRAINT access_events_hash_key`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE access_events
        ADD CONSTRAINT access_events_id_key UNIQUE (id),
        ADD CONSTRAINT access_events_hash_key UNIQUE (hash)`);
  }
}
