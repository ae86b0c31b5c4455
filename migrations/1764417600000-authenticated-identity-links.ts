import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An account's link to its patient, and the patient's emergency-access setting, carry a MAC
 * under a KEK-derived key, so a link rewritten in the database (an account pointed at another
 * patient) or an opt-out turned back on is not believed. Rows made before these columns get
 * their MAC once, at the first start after the upgrade (see PatientsService).
 */
export class AuthenticatedIdentityLinks1764417600000 implements MigrationInterface {
  name = 'AuthenticatedIdentityLinks1764417600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN mac bytea`);
    await q.query(`ALTER TABLE patients ADD COLUMN settings_mac bytea`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE patients DROP COLUMN settings_mac`);
    await q.query(`ALTER TABLE users DROP COLUMN mac`);
  }
}
