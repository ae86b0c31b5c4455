import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Crash-safe round closing. A round moves OPEN → CLOSING (its new model, outcome, ledger
 * record and the strategy's next state stored in one transaction) → CLOSED (once the ledger
 * holds the record). A round found CLOSING after a failure or a restart is finished from what
 * was stored, and a record the ledger already holds (same model hash) is adopted.
 */
export class ClosingRounds1764424800000 implements MigrationInterface {
  name = 'ClosingRounds1764424800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE training_rounds DROP CONSTRAINT training_rounds_status_check`);
    await q.query(
      `ALTER TABLE training_rounds ADD CONSTRAINT training_rounds_status_check
         CHECK (status IN ('OPEN', 'CLOSING', 'CLOSED', 'FAILED'))`,
    );
    await q.query(`ALTER TABLE training_rounds ADD COLUMN round_record jsonb`);
    await q.query(`ALTER TABLE training_rounds ADD COLUMN strategy_state jsonb`);
    await q.query(
      `ALTER TABLE training_rounds ADD CONSTRAINT training_rounds_closing_has_record
         CHECK (status <> 'CLOSING' OR (round_record IS NOT NULL AND strategy_state IS NOT NULL))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE training_rounds DROP CONSTRAINT training_rounds_closing_has_record`);
    await q.query(`ALTER TABLE training_rounds DROP COLUMN strategy_state`);
    await q.query(`ALTER TABLE training_rounds DROP COLUMN round_record`);
    await q.query(`ALTER TABLE training_rounds DROP CONSTRAINT training_rounds_status_check`);
    await q.query(
      `ALTER TABLE training_rounds ADD CONSTRAINT training_rounds_status_check
         CHECK (status IN ('OPEN', 'CLOSED', 'FAILED'))`,
    );
  }
}
