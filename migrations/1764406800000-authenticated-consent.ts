import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Authenticated copies of the ledger: every consent-projection and emergency row carries a MAC
 * under a KEK-derived key (rows without one are not believed until the start-up reconciliation
 * rewrites them from the ledger). An emergency records the ledger transaction that declared it,
 * and an access event cites the emergency it was read under and the actor's organisation, so
 * each PERMIT can be checked against what the ledger held.
 */
export class AuthenticatedConsent1764406800000 implements MigrationInterface {
  name = 'AuthenticatedConsent1764406800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE consent_grants ADD COLUMN mac bytea`);
    await q.query(`ALTER TABLE emergency_accesses ADD COLUMN mac bytea`);
    await q.query(`ALTER TABLE emergency_accesses ADD COLUMN ledger_tx_id text`);
    await q.query(`ALTER TABLE access_events ADD COLUMN emergency_id uuid`);
    await q.query(`ALTER TABLE access_events ADD COLUMN actor_org text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE access_events DROP COLUMN actor_org`);
    await q.query(`ALTER TABLE access_events DROP COLUMN emergency_id`);
    await q.query(`ALTER TABLE emergency_accesses DROP COLUMN ledger_tx_id`);
    await q.query(`ALTER TABLE emergency_accesses DROP COLUMN mac`);
    await q.query(`ALTER TABLE consent_grants DROP COLUMN mac`);
  }
}
