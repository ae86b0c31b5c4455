import { createSecretKey, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { DecryptionFailedError } from './aead';
import { contentHashV1, contentHashV2 } from './content-hash';
import {
  openField,
  openRecord,
  openRecordV1,
  resealRecord,
  sealField,
  sealRecord,
  sealRecordV1,
} from './record-cipher';
import { RecordLabels } from './record-labels';

const dek = createSecretKey(randomBytes(32));
const labels: RecordLabels = {
  recordId: 'r-1',
  patientId: 'p-1',
  version: 1,
  resourceType: 'Observation',
  category: 'laboratory',
  sensitivity: 'RESTRICTED',
};
const binding = { recordId: 'r-1', patientId: 'p-1', version: 1 };
const resource = {
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
  valueQuantity: { value: 5.4, unit: 'mmol/L' },
};

describe('record cipher', () => {
  it('round-trips a resource and reproduces its format-2 content hash', () => {
    const sealed = sealRecord(dek, labels, resource);
    const opened = openRecord(dek, labels, sealed);
    expect(opened.resource).toEqual(resource);
    expect(contentHashV2(opened.salt, labels, opened.resource)).toBe(sealed.contentHash);
  });

  it('never stores the plaintext', () => {
    const sealed = sealRecord(dek, labels, resource);
    expect(sealed.ciphertext.toString('latin1')).not.toContain('2345-7');
  });

  it.each<[string, Partial<RecordLabels>]>([
    ['record id', { recordId: 'r-2' }],
    ['patient id', { patientId: 'p-2' }],
    ['version', { version: 2 }],
    ['resource type', { resourceType: 'Condition' }],
    ['category', { category: 'vital-signs' }],
    ['category (removed)', { category: null }],
    ['sensitivity', { sensitivity: 'NORMAL' }],
  ])('refuses a ciphertext whose %s was changed', (_what, change) => {
    const sealed = sealRecord(dek, labels, resource);
    expect(() => openRecord(dek, { ...labels, ...change }, sealed)).toThrow(DecryptionFailedError);
  });

  it('cannot be confused by a category that looks like a separator', () => {
    const tricky = { ...labels, category: 'a","sensitivity":"NORMAL' };
    const sealed = sealRecord(dek, tricky, resource);
    expect(openRecord(dek, tricky, sealed).resource).toEqual(resource);
    expect(() => openRecord(dek, { ...tricky, category: 'a' }, sealed)).toThrow(
      DecryptionFailedError,
    );
  });

  it('refuses another patient key', () => {
    const sealed = sealRecord(dek, labels, resource);
    expect(() => openRecord(createSecretKey(randomBytes(32)), labels, sealed)).toThrow(
      DecryptionFailedError,
    );
  });

  it('detects any flipped bit in ciphertext, iv or tag', () => {
    const sealed = sealRecord(dek, labels, resource);
    fc.assert(
      fc.property(
        fc.constantFrom('ciphertext', 'iv', 'tag'),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (part: 'ciphertext' | 'iv' | 'tag', at, bit) => {
          const copy = { ...sealed, [part]: Buffer.from(sealed[part]) };
          const i = at % copy[part].length;
          copy[part][i] ^= 1 << bit;
          expect(() => openRecord(dek, labels, copy)).toThrow(DecryptionFailedError);
        },
      ),
      { numRuns: 300 },
    );
  });

  describe('format 1 (labels unbound)', () => {
    it('still opens and hashes as before', () => {
      const sealed = sealRecordV1(dek, binding, resource);
      const opened = openRecordV1(dek, binding, sealed);
      expect(opened.resource).toEqual(resource);
      expect(contentHashV1(opened.salt, opened.resource)).toBe(sealed.contentHash);
    });

    it.each([
      ['record id', { ...binding, recordId: 'r-2' }],
      ['patient id', { ...binding, patientId: 'p-2' }],
      ['version', { ...binding, version: 2 }],
    ])('refuses a ciphertext moved to another %s', (_what, other) => {
      const sealed = sealRecordV1(dek, binding, resource);
      expect(() => openRecordV1(dek, other, sealed)).toThrow(DecryptionFailedError);
    });

    it('does not open as format 2, nor format 2 as format 1', () => {
      expect(() => openRecord(dek, labels, sealRecordV1(dek, binding, resource))).toThrow(
        DecryptionFailedError,
      );
      expect(() => openRecordV1(dek, binding, sealRecord(dek, labels, resource))).toThrow(
        DecryptionFailedError,
      );
    });

    it('re-seals under the labels, keeping the salt so the anchored hash still verifies', () => {
      const old = sealRecordV1(dek, binding, resource);
      const resealed = resealRecord(dek, labels, openRecordV1(dek, binding, old));
      const opened = openRecord(dek, labels, resealed);
      expect(opened.resource).toEqual(resource);
      expect(contentHashV1(opened.salt, opened.resource)).toBe(old.contentHash);
      expect(() => openRecord(dek, { ...labels, sensitivity: 'NORMAL' }, resealed)).toThrow(
        DecryptionFailedError,
      );
    });
  });

  it('encrypts fields bound to their owner and label', () => {
    const packed = sealField(dek, 'displayName', 'p-1', 'Alice Example');
    expect(openField(dek, 'displayName', 'p-1', packed)).toBe('Alice Example');
    expect(() => openField(dek, 'displayName', 'p-2', packed)).toThrow(DecryptionFailedError);
    expect(() => openField(dek, 'other', 'p-1', packed)).toThrow(DecryptionFailedError);
  });
});
