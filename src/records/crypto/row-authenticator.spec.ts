import { createSecretKey, randomBytes } from 'node:crypto';
import { RowAuthenticator } from './row-authenticator';

describe('RowAuthenticator', () => {
  const kek = createSecretKey(randomBytes(32));
  const auth = new RowAuthenticator(kek);
  const row = { id: 'g1', patientId: 'p1', actions: ['READ'], validUntil: null };

  it('verifies the MAC it made, whatever the order of the fields', () => {
    const mac = auth.mac('consent-grant/v1', row);
    expect(
      auth.verify(
        'consent-grant/v1',
        { validUntil: null, actions: ['READ'], patientId: 'p1', id: 'g1' },
        mac,
      ),
    ).toBe(true);
  });

  it('refuses a MAC once any field changed', () => {
    const mac = auth.mac('consent-grant/v1', row);
    for (const changed of [
      { ...row, id: 'g2' },
      { ...row, actions: ['READ', 'WRITE'] },
      { ...row, validUntil: '2030-01-01T00:00:00.000Z' },
      { ...row, extra: true },
    ]) {
      expect(auth.verify('consent-grant/v1', changed, mac)).toBe(false);
    }
  });

  it('refuses a MAC made for another kind of row, or under another KEK', () => {
    const mac = auth.mac('consent-grant/v1', row);
    expect(auth.verify('emergency/v1', row, mac)).toBe(false);
    const other = new RowAuthenticator(createSecretKey(randomBytes(32)));
    expect(other.verify('consent-grant/v1', row, mac)).toBe(false);
  });

  it('refuses a missing, short or all-zero MAC', () => {
    expect(auth.verify('consent-grant/v1', row, null)).toBe(false);
    expect(auth.verify('consent-grant/v1', row, Buffer.alloc(31))).toBe(false);
    expect(auth.verify('consent-grant/v1', row, Buffer.alloc(32))).toBe(false);
  });

  it('frames parts by length, so moving bytes between parts changes the MAC', () => {
    const mac = auth.macParts('ledger-state/v1', ['ab', 'c']);
    expect(auth.verifyParts('ledger-state/v1', ['ab', 'c'], mac)).toBe(true);
    expect(auth.verifyParts('ledger-state/v1', ['a', 'bc'], mac)).toBe(false);
    expect(auth.verifyParts('ledger-state/v1', [Buffer.from('ab'), 'c'], mac)).toBe(true);
    expect(auth.verifyParts('ledger-block/v1', ['ab', 'c'], mac)).toBe(false);
    expect(auth.verifyParts('ledger-state/v1', ['ab', 'c'], null)).toBe(false);
  });
});
