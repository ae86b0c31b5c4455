import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The coordinator's state, so that a restarted API resumes a run: each round, every update
 * received (accepted bodies kept until the round closes; rejections with their reason), and
 * every model version.
 */
export class FederatedRounds1764403200000 implements MigrationInterface {
  name = 'FederatedRounds1764403200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE training_runs ADD COLUMN strategy_state jsonb`);
    await q.query(`
      CREATE TABLE training_rounds (
        run_id            uuid NOT NULL REFERENCES training_runs(id),
        round             integer NOT NULL CHECK (round >= 1),
        status            text NOT NULL CHECK (status IN ('OPEN', 'CLOSED', 'FAILED')),
        opened_at         timestamptz NOT NULL,
        deadline_at       timestamptz NOT NULL,
        closed_at         timestamptz,
        parent_hash       char(64) NOT NULL,
        model_hash        char(64),
        metrics           jsonb,
        epsilon           double precision,
        num_updates       integer,
        num_contributors  integer,
        ledger_tx_id      text,
        failure           text,
        PRIMARY KEY (run_id, round)
      )`);
    await q.query(`
      CREATE TABLE model_updates (
        id             uuid PRIMARY KEY,
        run_id         uuid NOT NULL REFERENCES training_runs(id),
        round          integer NOT NULL,
        node_id        text NOT NULL,
        status         text NOT NULL CHECK (status IN ('ACCEPTED', 'REJECTED')),
        reason         text,
        num_examples   integer NOT NULL DEFAULT 0,
        update_sha256  text,
        contributors   text[] NOT NULL DEFAULT '{}',
        grant_ids      text[] NOT NULL DEFAULT '{}',
        metrics        jsonb,
        -- float32 little-endian weights, kept only until the round is aggregated
        body           bytea,
        received_at    timestamptz NOT NULL
      )`);
    await q.query(
      `CREATE INDEX model_updates_by_round ON model_updates (run_id, round, received_at)`,
    );
    await q.query(
      `CREATE UNIQUE INDEX model_updates_one_accepted ON model_updates (run_id, round, node_id)
       WHERE status = 'ACCEPTED'`,
    );
    await q.query(`
      CREATE TABLE model_versions (
        run_id      uuid NOT NULL REFERENCES training_runs(id),
        round       integer NOT NULL CHECK (round >= 0),
        hash        char(64) NOT NULL,
        weights     bytea NOT NULL,
        created_at  timestamptz NOT NULL,
        PRIMARY KEY (run_id, round)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE model_versions`);
    await q.query(`DROP TABLE model_updates`);
    await q.query(`DROP TABLE training_rounds`);
    await q.query(`ALTER TABLE training_runs DROP COLUMN strategy_state`);
  }
}
