import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Free-text reasons sealed under the patient's data key, so that erasure (which destroys the
 * key) leaves them unreadable. New access events carry `reason_sealed` (covered by their hash)
 * and a null `reason`; events logged before keep their plaintext, since their hashes cover it.
 * Emergency declarations likewise; plaintext reasons of rows declared before this migration
 * are sealed and blanked at start-up (EmergencyService), because sealing needs the KEK.
 * The checks are NOT VALID: they bind every new or updated row, not the rows already there.
 */
export class SealedReasons1764414000000 implements MigrationInterface {
  name = 'SealedReasons1764414000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE access_events
        ADD COLUMN reason_sealed bytea,
        ADD COLUMN reason_key_id uuid,
        ADD CONSTRAINT access_events_reason_sealed
          CHECK (reason IS NULL AND (reason_sealed IS NULL) = (reason_key_id IS NULL)) NOT VALID`);
    await q.query(`
      ALTER TABLE emergency_accesses
        ALTER COLUMN reason DROP NOT NULL,
        ADD COLUMN reason_sealed bytea,
        ADD COLUMN key_id uuid,
        ADD CONSTRAINT emergency_accesses_reason_sealed
          CHECK (reason IS NULL AND reason_sealed IS NOT NULL AND key_id IS NOT NULL) NOT VALID`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE emergency_accesses
        DROP CONSTRAINT emergency_accesses_reason_sealed,
        DROP COLUMN key_id,
        DROP COLUMN reason_sealed`);
    await q.query(`
      ALTER TABLE access_events
        DROP CONSTRAINT access_events_reason_sealed,
        DROP COLUMN reason_key_id,
        DROP COLUMN reason_sealed`);
  }
}
