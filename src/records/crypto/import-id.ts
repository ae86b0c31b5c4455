// The record id an imported entry takes: a keyed digest of where it came from (its Bundle
// fullUrl, which FHIR makes unique: a urn:uuid, or a URL on its server) under a
// key derived from the patient's data key. Importing the same entry again finds the record it
// made, so a bundle imported twice (a retry after a lost answer, or a newer export from the same
// source) adds nothing twice. A database reader cannot tell the source from the id, nor link one
// source's entries across patients; erasure, which destroys the data key, unlinks them for good.
import { createHmac, hkdfSync, KeyObject, randomBytes } from 'node:crypto';

/** Where an imported entry came from, as its bundle says. */
export interface ImportSource {
  resourceType: string;
  fullUrl: string;
}

/** The patient's key for import ids, derived from (never equal to) their data key. */
export function importIdKey(dek: KeyObject): Buffer {
  return Buffer.from(
    hkdfSync('sha256', dek.export(), Buffer.alloc(0), 'custodia/import-id/v1', 32),
  );
}

/**
 * A UUID (RFC 9562 version 8, its bits the digest's) for the entry whose fullUrl is `fullUrl`;
 * `alternate` n > 0 gives the n-th other one, for an entry whose first id another record
 * holds. The type is left out, so that a reference to an entry imported before (`urn:uuid:…`,
 * which does not say its type) finds its record too; whoever matches a record checks its type.
 * The fullUrl is read as fullUrlIdentity reads it.
 */
export function importedRecordId(key: Buffer, fullUrl: string, alternate = 0): string {
  const name = fullUrlIdentity(fullUrl);
  const d = createHmac('sha256', key)
    .update(alternate === 0 ? name : `${name}\n${alternate}`, 'utf8')
    .digest();
  return version8(d);
}

/**
 * What a fullUrl names, spelt one way: a `urn:uuid:` in lower case (UUIDs compare so); an
 * http(s) URL with its host in lower case, without the scheme's default port, a version
 * (`/_history/…`, which a fullUrl should not carry) or a trailing slash, as its server reads
 * it. The path keeps its case, and http and https stay apart. Anything else as it is.
 */
export function fullUrlIdentity(fullUrl: string): string {
  if (/^urn:uuid:/i.test(fullUrl)) return fullUrl.toLowerCase();
  if (!/^https?:\/\//i.test(fullUrl)) return fullUrl;
  let url: URL;
  try {
    url = new URL(fullUrl);
  } catch {
    return fullUrl;
  }
  const path = url.pathname.replace(/\/_history\/[^/]+\/?$/, '').replace(/\/+$/, '');
  return `${url.protocol}//${url.host}${path}${url.search}`;
}

/** A random id of the same shape (version 8), where no derived one is free. */
export function randomImportId(): string {
  return version8(randomBytes(16));
}

function version8(d: Buffer): string {
  d[6] = (d[6] & 0x0f) | 0x80;
  d[8] = (d[8] & 0x3f) | 0x80;
  const hex = d.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
