import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Auditable AI decisions (ARCHITECTURE 7b): deployed models (a completed run's final weights
 * and how to prepare their inputs), the decisions made with them (inputs sealed under the
 * patient's data key, so erasure shreds them; commitment and output also on the ledger), and
 * each patient's choice whether AI decisions may be made about them.
 */
export class AiDecisions1764560000000 implements MigrationInterface {
  name = 'AiDecisions1764560000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE deployed_models (
        id uuid PRIMARY KEY,
        run_id uuid NOT NULL UNIQUE REFERENCES training_runs(id),
        study_id uuid NOT NULL REFERENCES studies(id),
        round integer NOT NULL,
        model_hash char(64) NOT NULL,
        weights bytea NOT NULL,
        metadata jsonb NOT NULL,
        auc double precision,
        epsilon double precision,
        deployed_by text NOT NULL,
        ledger_tx_id text NOT NULL,
        deployed_at timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE TABLE ai_decisions (
        id uuid PRIMARY KEY,
        patient_id uuid NOT NULL,
        model_id uuid NOT NULL REFERENCES deployed_models(id),
        model_hash char(64) NOT NULL,
        actor_id text NOT NULL,
        grant_id text NOT NULL,
        key_id uuid NOT NULL,
        inputs_sealed bytea NOT NULL,
        input_commitment char(64) NOT NULL,
        probability double precision NOT NULL,
        ledger_tx_id text NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    await q.query(
      `CREATE INDEX ai_decisions_by_patient ON ai_decisions (patient_id, created_at DESC, id DESC)`,
    );
    await q.query(`
      CREATE TABLE ai_decision_settings (
        patient_id uuid PRIMARY KEY,
        allow boolean NOT NULL,
        mac bytea NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE ai_decision_settings`);
    await q.query(`DROP TABLE ai_decisions`);
    await q.query(`DROP TABLE deployed_models`);
  }
}
