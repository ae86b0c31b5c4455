import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The records still waiting for their ledger anchor, by age: the outbox sweeps for them
 * periodically (records/record-anchoring), and without this index each sweep would read every
 * record. Nearly every row is ANCHORED, so the index stays tiny. record_versions has its own
 * (record_versions_pending).
 */
export class PendingRecords1764620000000 implements MigrationInterface {
  name = 'PendingRecords1764620000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX records_pending ON records (updated_at) WHERE anchor_state = 'PENDING'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX records_pending`);
  }
}
