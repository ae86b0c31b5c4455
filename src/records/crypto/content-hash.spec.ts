import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { canonicalJson, contentHash, contentHashV1, contentHashV2 } from './content-hash';
import { RecordLabels } from './record-labels';

const salt = Buffer.alloc(32, 7);
const labels: RecordLabels = {
  recordId: 'r-1',
  patientId: 'p-1',
  version: 1,
  resourceType: 'Observation',
  category: 'laboratory',
  sensitivity: 'NORMAL',
};

describe('content hash, format 1', () => {
  it('is sha256 over the domain tag, the salt and the JCS form of the resource', () => {
    const resource = { b: 1, a: [true, null, 'x'], c: { z: 1.5, y: 'é' } };
    const expected = createHash('sha256')
      .update(
        Buffer.concat([
          Buffer.from('custodia/record/v1'),
          salt,
          Buffer.from('{"a":[true,null,"x"],"b":1,"c":{"y":"é","z":1.5}}'),
        ]),
      )
      .digest('hex');
    expect(contentHashV1(salt, resource)).toBe(expected);
  });

  it('canonicalises numbers as RFC 8785 does', () => {
    expect(canonicalJson({ n: 1e21, m: 0.000001, k: -0 })).toBe('{"k":0,"m":0.000001,"n":1e+21}');
  });

  it('does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(contentHashV1(salt, reversed)).toBe(contentHashV1(salt, obj));
      }),
    );
  });

  it('changes with the salt, so equal resources do not share a hash', () => {
    const r = { resourceType: 'Observation', status: 'final' };
    expect(contentHashV1(Buffer.alloc(32, 1), r)).not.toBe(contentHashV1(Buffer.alloc(32, 2), r));
  });

  it('rejects a salt of the wrong length', () => {
    expect(() => contentHashV1(Buffer.alloc(16), {})).toThrow(/salt/);
    expect(() => contentHashV2(Buffer.alloc(16), labels, {})).toThrow(/salt/);
  });
});

describe('content hash, format 2', () => {
  const resource = { resourceType: 'Observation', status: 'final' };

  it('is sha256 over its own domain tag, the salt and the JCS form of labels and resource', () => {
    const expected = createHash('sha256')
      .update(
        Buffer.concat([
          Buffer.from('custodia/record/v2'),
          salt,
          Buffer.from(
            '{"labels":{"category":"laboratory","patientId":"p-1","recordId":"r-1",' +
              '"resourceType":"Observation","sensitivity":"NORMAL","version":1},' +
              '"resource":{"resourceType":"Observation","status":"final"}}',
          ),
        ]),
      )
      .digest('hex');
    expect(contentHashV2(salt, labels, resource)).toBe(expected);
  });

  it.each<[string, Partial<RecordLabels>]>([
    ['patient', { patientId: 'p-2' }],
    ['resource type', { resourceType: 'Condition' }],
    ['category', { category: 'vital-signs' }],
    ['missing category', { category: null }],
    ['sensitivity', { sensitivity: 'RESTRICTED' }],
    ['version', { version: 2 }],
    ['record id', { recordId: 'r-2' }],
  ])('changes when the %s changes', (_what, change) => {
    expect(contentHashV2(salt, { ...labels, ...change }, resource)).not.toBe(
      contentHashV2(salt, labels, resource),
    );
  });

  it('ignores anything passed along with the labels that is not a label', () => {
    const wider = { ...labels, ciphertext: 'not a label' } as RecordLabels;
    expect(contentHashV2(salt, wider, resource)).toBe(contentHashV2(salt, labels, resource));
  });

  it('differs from format 1 for the same salt and resource', () => {
    expect(contentHashV2(salt, labels, resource)).not.toBe(contentHashV1(salt, resource));
  });

  it('is chosen by the format a row was anchored with', () => {
    expect(contentHash(1, salt, labels, resource)).toBe(contentHashV1(salt, resource));
    expect(contentHash(2, salt, labels, resource)).toBe(contentHashV2(salt, labels, resource));
  });
});
