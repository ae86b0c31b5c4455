// Data keys (one 256-bit key per patient) are stored wrapped by the key-encryption key
// (KEK). The wrap binds the key id and the patient id, so a wrapped key moved to another
// patient's row does not unwrap.
import { createSecretKey, KeyObject, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { open, pack, seal, unpack } from './aead';

export const KEY_BYTES = 32;

export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

function wrapAad(keyId: string, patientId: string): Buffer {
  return Buffer.from(`custodia/dek/v1|${keyId}|${patientId}`, 'utf8');
}

export function wrapDataKey(kek: KeyObject, dek: Buffer, keyId: string, patientId: string): Buffer {
  return pack(seal(kek, dek, wrapAad(keyId, patientId)));
}

export function unwrapDataKey(
  kek: KeyObject,
  wrapped: Buffer,
  keyId: string,
  patientId: string,
): KeyObject {
  return createSecretKey(open(kek, unpack(wrapped), wrapAad(keyId, patientId)));
}

/** Parses a KEK given as base64 (or hex) of 32 bytes; the value never appears in errors. */
export function parseKek(value: string): KeyObject {
  const v = value.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  if (bytes.length !== KEY_BYTES) {
    throw new Error('CUSTODIA_KEK must be 32 bytes, base64- or hex-encoded');
  }
  return createSecretKey(bytes);
}

/**
 * The KEK of embedded mode: generated once into `<dataDir>/kek` (mode 0600) and reused.
 * Production deployments pass CUSTODIA_KEK (from their secret store) instead.
 */
export async function loadOrCreateKekFile(dataDir: string): Promise<KeyObject> {
  const file = join(dataDir, 'kek');
  if (existsSync(file)) return parseKek(await readFile(file, 'utf8'));
  await writeFile(file, randomBytes(KEY_BYTES).toString('base64') + '\n', {
    mode: 0o600,
    flag: 'wx',
  });
  await chmod(file, 0o600);
  return parseKek(await readFile(file, 'utf8'));
}

/** The configured KEK: CUSTODIA_KEK when set, else embedded mode's data-dir file. */
export function kekOf(config: { kek?: string; dataDir: string }): Promise<KeyObject> | KeyObject {
  return config.kek ? parseKek(config.kek) : loadOrCreateKekFile(config.dataDir);
}
