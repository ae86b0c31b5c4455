import { createSecretKey, randomBytes } from 'node:crypto';
import { isUuid } from '../../common/ids';
import { fullUrlIdentity, importedRecordId, importIdKey, randomImportId } from './import-id';

describe('import ids', () => {
  const key = importIdKey(createSecretKey(randomBytes(32)));
  const source = { fullUrl: 'urn:uuid:4f1c2a9e-0d4b-4b8e-9c1a-7e6d5c4b3a21' };

  it('gives an entry from the same source the same id, a UUID of version 8', () => {
    const id = importedRecordId(key, source.fullUrl);
    expect(importedRecordId(key, `${source.fullUrl}`)).toBe(id);
    expect(isUuid(id)).toBe(true);
    expect(id[14]).toBe('8');
    expect('89ab').toContain(id[19]);
  });

  it('gives another id for another fullUrl or patient key', () => {
    const id = importedRecordId(key, source.fullUrl);
    expect(importedRecordId(key, `${source.fullUrl.slice(0, -1)}2`)).not.toBe(id);
    const other = importIdKey(createSecretKey(randomBytes(32)));
    expect(importedRecordId(other, source.fullUrl)).not.toBe(id);
  });

  it('gives alternates, other ids of the same shape, and reads a urn:uuid in lower case', () => {
    const id = importedRecordId(key, source.fullUrl);
    const alternates = [1, 2, 3].map((n) => importedRecordId(key, source.fullUrl, n));
    expect(new Set([id, ...alternates]).size).toBe(4);
    for (const a of [...alternates, randomImportId()]) {
      expect(isUuid(a)).toBe(true);
      expect(a[14]).toBe('8');
    }
    expect(
      importedRecordId(key, source.fullUrl.toUpperCase().replace('URN:UUID:', 'URN:uuid:')),
    ).toBe(id);
    // A URL's case is its server's business: kept.
    expect(importedRecordId(key, 'https://x.example/fhir/Observation/A')).not.toBe(
      importedRecordId(key, 'https://x.example/fhir/Observation/a'),
    );
  });

  it('reads one URL however it is spelt: host case, default port, version, trailing slash', () => {
    const plain = 'https://ex.org/fhir/Encounter/e1';
    for (const spelt of [
      'https://EX.org/fhir/Encounter/e1',
      'HTTPS://ex.org:443/fhir/Encounter/e1',
      'https://ex.org/fhir/Encounter/e1/',
      'https://ex.org/fhir/Encounter/e1/_history/3',
    ]) {
      expect(fullUrlIdentity(spelt)).toBe(plain);
      expect(importedRecordId(key, spelt)).toBe(importedRecordId(key, plain));
    }
    // Another scheme, port or path is another resource; what is not a URL stays as it is.
    for (const other of [
      'http://ex.org/fhir/Encounter/e1',
      'https://ex.org:8443/fhir/Encounter/e1',
      'https://ex.org/fhir/Encounter/E1',
    ]) {
      expect(fullUrlIdentity(other)).not.toBe(plain);
    }
    expect(fullUrlIdentity('urn:oid:1.2.3')).toBe('urn:oid:1.2.3');
    expect(fullUrlIdentity('https://[bad')).toBe('https://[bad');
  });

  it('derives its key from the data key without being it', () => {
    const raw = randomBytes(32);
    expect(importIdKey(createSecretKey(raw)).equals(raw)).toBe(false);
    expect(importIdKey(createSecretKey(raw)).equals(importIdKey(createSecretKey(raw)))).toBe(true);
  });
});
