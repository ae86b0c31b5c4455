import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An account's link to its patient carries a MAC under a KEK-derived key, so a link rewritten
 * in the database (an account pointed at another patient) is not believed. Links made before
 * this column get their MAC once, at the first start after the upgrade (see PatientsService).
 */
export class AuthenticatedIdentityLinks1764417600000 implements MigrationInterface {
  name = 'AuthenticatedIdentityLinks1764417600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN mac bytea`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users DROP COLUMN mac`);
  }
}
