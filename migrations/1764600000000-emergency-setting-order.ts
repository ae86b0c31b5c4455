import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A patient's emergency-access setting lives on the ledger (consent.SetEmergencyAccess), and
 * each organisation's database keeps a copy. The copy is written by the request that changed
 * it and by the consent projector (a change made through another organisation), in whatever
 * order they finish: the ledger time of the setting each wrote orders them, so an older
 * setting never overwrites a newer one.
 */
export class EmergencySettingOrder1764600000000 implements MigrationInterface {
  name = 'EmergencySettingOrder1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE patients ADD COLUMN emergency_setting_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE patients DROP COLUMN emergency_setting_at`);
  }
}
