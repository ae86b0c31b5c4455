import { createSecretKey, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { DecryptionFailedError } from './aead';
import { contentHash } from './content-hash';
import { openField, openRecord, sealField, sealRecord } from './record-cipher';

const dek = createSecretKey(randomBytes(32));
const binding = { recordId: 'r-1', patientId: 'p-1', version: 1 };
const resource = {
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
  valueQuantity: { value: 5.4, unit: 'mmol/L' },
};

describe('record cipher', () => {
  it('round-trips a resource and reproduces its content hash', () => {
    const sealed = sealRecord(dek, binding, resource);
    const opened = openRecord(dek, binding, sealed);
    expect(opened.resource).toEqual(resource);
    expect(contentHash(opened.salt, opened.resource)).toBe(sealed.contentHash);
  });

  it('never stores the plaintext', () => {
    const sealed = sealRecord(dek, binding, resource);
    expect(sealed.ciphertext.toString('latin1')).not.toContain('2345-7');
  });

  it.each([
    ['record id', { ...binding, recordId: 'r-2' }],
    ['patient id', { ...binding, patientId: 'p-2' }],
    ['version', { ...binding, version: 2 }],
  ])('refuses a ciphertext moved to another %s', (_what, other) => {
    const sealed = sealRecord(dek, binding, resource);
    expect(() => openRecord(dek, other, sealed)).toThrow(DecryptionFailedError);
  });

  it('refuses another patient key', () => {
    const sealed = sealRecord(dek, binding, resource);
    expect(() => openRecord(createSecretKey(randomBytes(32)), binding, sealed)).toThrow(
      DecryptionFailedError,
    );
  });

  it('detects any flipped bit in ciphertext, iv or tag', () => {
    const sealed = sealRecord(dek, binding, resource);
    fc.assert(
      fc.property(
        fc.constantFrom('ciphertext', 'iv', 'tag'),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (part: 'ciphertext' | 'iv' | 'tag', at, bit) => {
          const copy = { ...sealed, [part]: Buffer.from(sealed[part]) };
          const i = at % copy[part].length;
          copy[part][i] ^= 1 << bit;
          expect(() => openRecord(dek, binding, copy)).toThrow(DecryptionFailedError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encrypts fields bound to their owner and label', () => {
    const packed = sealField(dek, 'displayName', 'p-1', 'Alice Example');
    expect(openField(dek, 'displayName', 'p-1', packed)).toBe('Alice Example');
    expect(() => openField(dek, 'displayName', 'p-2', packed)).toThrow(DecryptionFailedError);
    expect(() => openField(dek, 'other', 'p-1', packed)).toThrow(DecryptionFailedError);
  });
});
