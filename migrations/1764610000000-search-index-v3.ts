import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Search index version 3 (records/search): a Period without a start dated by its end, a Timing
 * by its first event, and the terms of `system|` tokens and of Observations' components. Every
 * row's entry may change, so every row is indexed again at start-up (RecordIndexing opens each
 * under its own key, which a migration does not hold); until then each keeps its version 2
 * entry, which answers every search version 2 answered.
 */
export class SearchIndexV31764610000000 implements MigrationInterface {
  name = 'SearchIndexV31764610000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX records_unindexed`);
    await q.query(`CREATE INDEX records_unindexed ON records (id) WHERE index_version < 3`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX records_unindexed`);
    await q.query(`UPDATE records SET index_version = 2 WHERE index_version = 3`);
    await q.query(`CREATE INDEX records_unindexed ON records (id) WHERE index_version < 2`);
  }
}
