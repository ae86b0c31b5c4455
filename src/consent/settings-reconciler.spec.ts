import type { PatientKeyring } from '@custodia/chaincode';
import { compareSettings } from './settings-reconciler';
import type { SettingRow } from './signed-consent-settings';

const ring = (patientId: string, requireSignedConsent: boolean, settingVersion: number) =>
  ({
    patientId,
    keys: [],
    keysVersion: 1,
    requireSignedConsent,
    settingVersion,
    txId: 't',
  }) as PatientKeyring;
const row = (patientId: string, requireSigned: boolean, settingVersion: number): SettingRow => ({
  patientId,
  requireSigned,
  settingVersion,
  mac: Buffer.from(patientId),
});
const forged = (r: SettingRow) => r.mac.toString() === 'forged';

describe('compareSettings', () => {
  it('finds nothing when every setting the ledger made is stored as it is there', () => {
    const drift = compareSettings(
      [ring('p1', true, 1), ring('p2', false, 2), ring('p3', false, 0)],
      [row('p1', true, 1), row('p2', false, 2)],
      (r) => !forged(r),
    );
    expect(drift).toEqual({ missing: [], extra: [], changed: [] });
  });

  it('names a deleted, a made-up, a flipped, a rolled-back and a forged row', () => {
    const drift = compareSettings(
      [
        ring('deleted', true, 1),
        ring('flipped', true, 1),
        ring('rolled-back', true, 3),
        ring('forged', true, 1),
      ],
      [
        row('made-up', true, 1),
        row('flipped', false, 1),
        row('rolled-back', false, 2),
        { ...row('forged', true, 1), mac: Buffer.from('forged') },
      ],
      (r) => !forged(r),
    );
    expect(drift).toEqual({
      missing: ['deleted'],
      extra: ['made-up'],
      changed: ['flipped', 'rolled-back', 'forged'],
    });
  });

  it('takes an authentic row newer than the ledger it read for a setting committed since', () => {
    const drift = compareSettings([ring('p1', true, 1)], [row('p1', false, 2)], () => true);
    expect(drift).toEqual({ missing: [], extra: [], changed: [] });
  });
});
