import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { canonicalJson, contentHash } from './content-hash';

const salt = Buffer.alloc(32, 7);

describe('content hash', () => {
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
    expect(contentHash(salt, resource)).toBe(expected);
  });

  it('canonicalises numbers as RFC 8785 does', () => {
    expect(canonicalJson({ n: 1e21, m: 0.000001, k: -0 })).toBe('{"k":0,"m":0.000001,"n":1e+21}');
  });

  it('does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(contentHash(salt, reversed)).toBe(contentHash(salt, obj));
      }),
    );
  });

  it('changes with the salt, so equal resources do not share a hash', () => {
    const r = { resourceType: 'Observation', status: 'final' };
    expect(contentHash(Buffer.alloc(32, 1), r)).not.toBe(contentHash(Buffer.alloc(32, 2), r));
  });

  it('rejects a salt of the wrong length', () => {
    expect(() => contentHash(Buffer.alloc(16), {})).toThrow(/salt/);
  });
});
