import { MigrationInterface, QueryRunner } from 'typeorm';

/** Studies, training nodes, and the runs, rounds and updates of federated training. */
export class FederatedStudies1764399600000 implements MigrationInterface {
  name = 'FederatedStudies1764399600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE studies (
        id                uuid PRIMARY KEY,
        title             text NOT NULL,
        owner_id          text NOT NULL,
        model             text NOT NULL CHECK (model IN ('LOGISTIC', 'MLP')),
        features          text[] NOT NULL,
        label             text NOT NULL,
        strategy          text NOT NULL CHECK (strategy IN ('FEDAVG', 'FEDPROX', 'FEDADAM', 'TRIMMED_MEAN')),
        local_epochs      integer NOT NULL CHECK (local_epochs >= 1),
        learning_rate     double precision NOT NULL CHECK (learning_rate > 0),
        batch_size        integer NOT NULL CHECK (batch_size >= 1),
        min_nodes         integer NOT NULL CHECK (min_nodes >= 1),
        round_deadline_ms integer NOT NULL CHECK (round_deadline_ms >= 1000),
        clip_norm         double precision CHECK (clip_norm > 0),
        noise_multiplier  double precision CHECK (noise_multiplier >= 0),
        created_at        timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX studies_by_owner ON studies (owner_id, created_at DESC)`);
    await q.query(`
      CREATE TABLE training_nodes (
        id               uuid PRIMARY KEY,
        organization_id  text NOT NULL REFERENCES organizations(id),
        name             text NOT NULL,
        -- the node's ES256 public key (JWK); its manifests are verified against it
        public_key       jsonb NOT NULL,
        key_thumbprint   text NOT NULL UNIQUE,
        registered_by    text NOT NULL,
        created_at       timestamptz NOT NULL,
        revoked_at       timestamptz
      )`);
    await q.query(`
      CREATE TABLE training_runs (
        id                 uuid PRIMARY KEY,
        study_id           uuid NOT NULL REFERENCES studies(id),
        status             text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
        rounds             integer NOT NULL CHECK (rounds >= 1),
        current_round      integer NOT NULL DEFAULT 0,
        model_hash         char(64),
        provenance_tx_ids  text[] NOT NULL DEFAULT '{}',
        started_by         text NOT NULL,
        failure            text,
        created_at         timestamptz NOT NULL,
        updated_at         timestamptz NOT NULL
      )`);
    await q.query(
      `CREATE INDEX training_runs_by_study ON training_runs (study_id, created_at DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE training_runs`);
    await q.query(`DROP TABLE training_nodes`);
    await q.query(`DROP TABLE studies`);
  }
}
