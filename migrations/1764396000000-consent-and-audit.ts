import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The consent projection (the ledger is the source of truth), declared emergencies, and the
 * access log: append-only (a trigger rejects UPDATE and DELETE) and hash-chained, with the
 * heads anchored on the ledger recorded locally.
 */
export class ConsentAndAudit1764396000000 implements MigrationInterface {
  name = 'ConsentAndAudit1764396000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE consent_grants (
        id                 text PRIMARY KEY,
        patient_id         text NOT NULL,
        grantee_type       text NOT NULL CHECK (grantee_type IN ('CLINICIAN', 'ORGANIZATION', 'STUDY')),
        grantee_id         text NOT NULL,
        purpose            text NOT NULL CHECK (purpose IN ('TREATMENT', 'RESEARCH')),
        actions            text[] NOT NULL,
        resource_types     text[] NOT NULL,
        categories         text[] NOT NULL,
        include_restricted boolean NOT NULL,
        valid_from         timestamptz NOT NULL,
        valid_until        timestamptz,
        -- stored as on the ledger; EXPIRED is derived from valid_until when read
        status             text NOT NULL CHECK (status IN ('ACTIVE', 'REVOKED')),
        revoked_at         timestamptz,
        ledger_tx_id       text NOT NULL,
        revoked_tx_id      text,
        created_at         timestamptz NOT NULL
      )`);
    await q.query(
      `CREATE INDEX consent_grants_by_patient ON consent_grants (patient_id, grantee_type, grantee_id)`,
    );
    await q.query(
      `CREATE INDEX consent_grants_by_grantee ON consent_grants (grantee_type, grantee_id)`,
    );
    await q.query(`
      CREATE TABLE emergency_accesses (
        id            uuid PRIMARY KEY,
        patient_id    uuid NOT NULL REFERENCES patients(id),
        clinician_id  text NOT NULL,
        reason        text NOT NULL,
        declared_at   timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL
      )`);
    await q.query(
      `CREATE INDEX emergency_accesses_live ON emergency_accesses (patient_id, clinician_id, expires_at)`,
    );
    await q.query(`
      CREATE TABLE access_events (
        seq          bigint PRIMARY KEY,
        id           uuid NOT NULL UNIQUE,
        actor_id     text NOT NULL,
        patient_id   uuid NOT NULL,
        record_ids   uuid[] NOT NULL,
        action       text NOT NULL,
        purpose      text NOT NULL,
        decision     text NOT NULL CHECK (decision IN ('PERMIT', 'DENY')),
        consent_id   text,
        break_glass  boolean NOT NULL,
        reason       text,
        at           timestamptz NOT NULL,
        prev_hash    char(64) NOT NULL,
        hash         char(64) NOT NULL UNIQUE
      )`);
    await q.query(`CREATE INDEX access_events_by_patient ON access_events (patient_id, seq DESC)`);
    await q.query(`
      CREATE FUNCTION access_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'access_events is append-only: % is not allowed', TG_OP;
      END $$`);
    await q.query(`
      CREATE TRIGGER access_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_events
      FOR EACH STATEMENT EXECUTE FUNCTION access_events_append_only()`);
    await q.query(`
      CREATE TABLE audit_anchors (
        seq          bigint PRIMARY KEY,
        head_hash    char(64) NOT NULL,
        ledger_tx_id text NOT NULL,
        anchored_at  timestamptz NOT NULL
      )`);
    await q.query(`ALTER TABLE patients ADD COLUMN erased_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE patients DROP COLUMN erased_at`);
    await q.query(`DROP TABLE audit_anchors`);
    await q.query(`DROP TRIGGER access_events_append_only ON access_events`);
    await q.query(`DROP TABLE access_events`);
    await q.query(`DROP FUNCTION access_events_append_only()`);
    await q.query(`DROP TABLE emergency_accesses`);
    await q.query(`DROP TABLE consent_grants`);
  }
}
