import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RowAuthenticator } from '../../records/crypto';
import { databaseIdentity, HeadFileInvalid, LedgerHeadFile } from './head-file';
import { LedgerSeal } from './seal';

const sealOf = () => new LedgerSeal(new RowAuthenticator(createSecretKey(randomBytes(32))));
const hash = (n: number) => n.toString(16).padStart(64, '0');

describe('LedgerHeadFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodia-head-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps the newest head recorded, never an older one, and reads it back', async () => {
    const file = new LedgerHeadFile(join(dir, 'head.json'), 'embedded', sealOf());
    expect(await file.read()).toBeNull();
    file.record({ number: 3, hash: hash(3) });
    file.record({ number: 5, hash: hash(5) });
    file.record({ number: 4, hash: hash(4) });
    await file.flush();
    expect(await file.read()).toEqual({ number: 5, hash: hash(5) });
  });

  it('refuses a head it did not seal, and ignores one recorded for another database', async () => {
    const seal = sealOf();
    const path = join(dir, 'head.json');
    const file = new LedgerHeadFile(path, 'db:5432/a', seal);
    file.record({ number: 7, hash: hash(7) });
    await file.flush();
    expect(await new LedgerHeadFile(path, 'db:5432/b', seal).read()).toBeNull();
    await expect(new LedgerHeadFile(path, 'db:5432/a', sealOf()).read()).rejects.toThrow(
      HeadFileInvalid,
    );
    const body = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...body, number: 2 }));
    await expect(file.read()).rejects.toThrow(HeadFileInvalid);
    await writeFile(path, 'not json');
    await expect(file.read()).rejects.toThrow(HeadFileInvalid);
  });

  it('names a database without its credentials', () => {
    expect(databaseIdentity(undefined)).toBe('embedded');
    expect(databaseIdentity('postgres://user:secret@db.example:6543/custodia')).toBe(
      'db.example:6543/custodia',
    );
    expect(databaseIdentity('postgres://user:secret@db/custodia')).toBe('db:5432/custodia');
  });
});
