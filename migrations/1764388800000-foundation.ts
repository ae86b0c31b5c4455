import { MigrationInterface, QueryRunner } from 'typeorm';

/** Organisations, patients and their user identities, data keys, encrypted records. */
export class Foundation1764388800000 implements MigrationInterface {
  name = 'Foundation1764388800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE organizations (
        id          text PRIMARY KEY,
        name        text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE patients (
        id                      uuid PRIMARY KEY,
        organization_id         text REFERENCES organizations(id),
        -- the display name is PHI: sealed with the patient's own data key
        display_name_sealed     bytea,
        allow_emergency_access  boolean NOT NULL DEFAULT true,
        created_at              timestamptz NOT NULL DEFAULT now(),
        updated_at              timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE users (
        subject     text PRIMARY KEY,
        patient_id  uuid UNIQUE REFERENCES patients(id),
        created_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE data_keys (
        id            uuid PRIMARY KEY,
        patient_id    uuid NOT NULL REFERENCES patients(id),
        -- wrapped by the KEK; NULL once destroyed (crypto-shredding)
        wrapped_key   bytea,
        created_at    timestamptz NOT NULL DEFAULT now(),
        destroyed_at  timestamptz,
        CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
      )`);
    await q.query(
      `CREATE UNIQUE INDEX data_keys_one_live_per_patient ON data_keys (patient_id) WHERE destroyed_at IS NULL`,
    );
    await q.query(`
      CREATE TABLE records (
        id             uuid PRIMARY KEY,
        patient_id     uuid NOT NULL REFERENCES patients(id),
        version        integer NOT NULL DEFAULT 1 CHECK (version >= 1),
        resource_type  text NOT NULL,
        category       text,
        sensitivity    text NOT NULL CHECK (sensitivity IN ('NORMAL', 'RESTRICTED')),
        key_id         uuid NOT NULL REFERENCES data_keys(id),
        iv             bytea NOT NULL,
        auth_tag       bytea NOT NULL,
        ciphertext     bytea NOT NULL,
        content_hash   char(64) NOT NULL,
        anchor_state   text NOT NULL DEFAULT 'PENDING' CHECK (anchor_state IN ('PENDING', 'ANCHORED')),
        anchored_hash  char(64),
        ledger_tx_id   text,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now()
      )`);
    // Keyset pagination: newest first, per patient, optionally per resource type / category.
    await q.query(`CREATE INDEX records_page ON records (patient_id, created_at DESC, id DESC)`);
    await q.query(
      `CREATE INDEX records_page_by_type ON records (patient_id, resource_type, created_at DESC, id DESC)`,
    );
    await q.query(
      `CREATE INDEX records_page_by_category ON records (patient_id, category, created_at DESC, id DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE records`);
    await q.query(`DROP TABLE data_keys`);
    await q.query(`DROP TABLE users`);
    await q.query(`DROP TABLE patients`);
    await q.query(`DROP TABLE organizations`);
  }
}
