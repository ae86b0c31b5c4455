import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecryptionFailedError } from './aead';
import { loadOrCreateKekFile, newDataKey, parseKek, unwrapDataKey, wrapDataKey } from './key-wrap';

describe('data key wrapping', () => {
  const kek = parseKek(randomBytes(32).toString('base64'));

  it('unwraps what it wrapped, for the same key id and patient', () => {
    const dek = newDataKey();
    const wrapped = wrapDataKey(kek, dek, 'k-1', 'p-1');
    expect(unwrapDataKey(kek, wrapped, 'k-1', 'p-1').export()).toEqual(dek);
  });

  it('refuses a wrapped key moved to another patient or key id', () => {
    const wrapped = wrapDataKey(kek, newDataKey(), 'k-1', 'p-1');
    expect(() => unwrapDataKey(kek, wrapped, 'k-1', 'p-2')).toThrow(DecryptionFailedError);
    expect(() => unwrapDataKey(kek, wrapped, 'k-2', 'p-1')).toThrow(DecryptionFailedError);
  });

  it('refuses another KEK', () => {
    const wrapped = wrapDataKey(kek, newDataKey(), 'k-1', 'p-1');
    const other = parseKek(randomBytes(32).toString('hex'));
    expect(() => unwrapDataKey(other, wrapped, 'k-1', 'p-1')).toThrow(DecryptionFailedError);
  });

  it('rejects a KEK of the wrong size without echoing it', () => {
    const secret = randomBytes(16).toString('base64');
    expect(() => parseKek(secret)).toThrow('CUSTODIA_KEK must be 32 bytes');
    try {
      parseKek(secret);
    } catch (e) {
      expect(String(e)).not.toContain(secret);
    }
  });

  it('generates the embedded KEK once, readable by its owner only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custodia-kek-'));
    try {
      const first = await loadOrCreateKekFile(dir);
      const again = await loadOrCreateKekFile(dir);
      expect(again.export()).toEqual(first.export());
      expect((await stat(join(dir, 'kek'))).mode & 0o777).toBe(0o600);
      expect(Buffer.from((await readFile(join(dir, 'kek'), 'utf8')).trim(), 'base64')).toHaveLength(
        32,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
