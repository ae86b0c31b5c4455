import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Patient-signed consent. A projected grant says whether the patient signed it (its MAC covers
 * that); a patient's signed-only setting is projected from the ledger, MAC'd, so that the policy
 * decision point can treat their unsigned grants as absent.
 */
export class SignedConsent1764550000000 implements MigrationInterface {
  name = 'SignedConsent1764550000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE consent_grants ADD COLUMN patient_signed boolean NOT NULL DEFAULT false`,
    );
    await q.query(
      `CREATE TABLE signed_consent_settings (
         patient_id text PRIMARY KEY,
         require_signed boolean NOT NULL,
         setting_version integer NOT NULL,
         ledger_tx_id text NOT NULL,
         mac bytea NOT NULL
       )`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE signed_consent_settings`);
    await q.query(`ALTER TABLE consent_grants DROP COLUMN patient_signed`);
  }
}
