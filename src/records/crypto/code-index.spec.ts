import { createSecretKey, randomBytes } from 'node:crypto';
import { CODE_DIGEST_BYTES, codeDigests, codeIndexKey } from './code-index';

describe('code index digests', () => {
  const dekA = createSecretKey(randomBytes(32));
  const dekB = createSecretKey(randomBytes(32));
  const term = 'sc:http://loinc.org|4548-4';

  it('gives one patient the same digest for the same code, and a short one', () => {
    const [a1] = codeDigests(codeIndexKey(dekA), [term]);
    const [a2] = codeDigests(codeIndexKey(dekA), [term]);
    expect(a1.equals(a2)).toBe(true);
    expect(a1).toHaveLength(CODE_DIGEST_BYTES);
  });

  it('gives two patients unrelated digests for the same code', () => {
    const [a] = codeDigests(codeIndexKey(dekA), [term]);
    const [b] = codeDigests(codeIndexKey(dekB), [term]);
    expect(a.equals(b)).toBe(false);
  });

  it('never uses the data key itself as the index key', () => {
    expect(codeIndexKey(dekA).equals(dekA.export())).toBe(false);
  });

  it('separates terms', () => {
    const [x, y] = codeDigests(codeIndexKey(dekA), ['c:4548-4', term]);
    expect(x.equals(y)).toBe(false);
  });
});
