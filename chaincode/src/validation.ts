// Input checks run first in every transaction: a malformed call fails with a message that
// names the field, before anything is read or written.

import { ChaincodeError } from './errors';
import { INVISIBLE_IN_GRANTEE, UNSTORABLE_IN_IDENTIFIER } from './policy';

export { ChaincodeError } from './errors';

const invalid = (field: string, what: string) =>
  new ChaincodeError('INVALID_ARGUMENT', `${field} ${what}`);

/** Pseudonymous ids: letters, digits and . _ : - (never names or other PHI). */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const CODE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export const MAX_LIST = 64;
export const MAX_HASHES = 1024;

export function parseJson(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'string') throw invalid(field, 'must be a JSON string');
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw invalid(field, 'is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalid(field, 'must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Whom a token names (a `sub`, an `org`) as a grant's grantee or a request's actor: what an
 * identity provider issues (`auth0|5f7c…`, `dr.house@example.org`), 1–255 characters with no
 * character of UNSTORABLE_IN_IDENTIFIER (policy.ts), which the API's token rule uses too.
 */
export const MAX_PRINCIPAL = 255;

export function principal(value: unknown, field: string): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > MAX_PRINCIPAL ||
    UNSTORABLE_IN_IDENTIFIER.test(value)
  ) {
    throw invalid(
      field,
      `must be an identity of 1–${MAX_PRINCIPAL} characters without control characters or bidirectional controls`,
    );
  }
  return value;
}

/**
 * A grant's grantee: a principal, shown to the patient, holding nothing invisible (no
 * character of INVISIBLE_IN_GRANTEE) that could make it read as someone else's id.
 */
export function grantee(value: unknown, field: string): string {
  const p = principal(value, field);
  if (INVISIBLE_IN_GRANTEE.test(p)) {
    throw invalid(
      field,
      'must not hold invisible characters (format characters such as zero-width spaces, separators, spaces other than U+0020, or whitespace at either end)',
    );
  }
  return p;
}

export function id(value: unknown, field: string): string {
  if (typeof value !== 'string' || !ID.test(value)) {
    throw invalid(field, 'must be an id of 1–128 letters, digits, . _ : or -');
  }
  return value;
}

export function code(value: unknown, field: string): string {
  if (typeof value !== 'string' || !CODE.test(value)) {
    throw invalid(field, 'must be a code of 1–64 letters, digits, . _ : / or -');
  }
  return value;
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(field, `must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function sha256(value: unknown, field: string): string {
  if (typeof value !== 'string' || !SHA256.test(value)) {
    throw invalid(field, 'must be a SHA-256 hash as 64 lowercase hex digits');
  }
  return value;
}

/**
 * An ISO-8601 instant with a time zone, normalised to UTC milliseconds. Impossible dates
 * (30 February, hour 24) are refused rather than rolled over into another day.
 */
export function instant(value: unknown, field: string): string {
  const m = typeof value === 'string' ? ISO_INSTANT.exec(value) : null;
  const millis = m ? Date.parse(value as string) : NaN;
  if (!m || Number.isNaN(millis))
    throw invalid(field, 'must be an ISO-8601 date-time with a time zone');
  const [y, mo, d, h, mi, sec] = (value as string).slice(0, 19).split(/[-T:]/).map(Number);
  // Not Date.UTC, which takes the years 0–99 for 1900–1999.
  const wall = new Date(0);
  wall.setUTCFullYear(y, mo - 1, d);
  wall.setUTCHours(h, mi, sec, 0);
  if (
    wall.getUTCFullYear() !== y ||
    wall.getUTCMonth() !== mo - 1 ||
    wall.getUTCDate() !== d ||
    wall.getUTCHours() !== h ||
    wall.getUTCMinutes() !== mi ||
    wall.getUTCSeconds() !== sec
  ) {
    throw invalid(field, 'is not a real date and time');
  }
  return new Date(millis).toISOString();
}

export function bool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(field, 'must be true or false');
  return value;
}

export function positiveInt(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw invalid(field, 'must be a whole number of at least 1');
  }
  return n;
}

export function nonNegativeNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(field, 'must be a finite number of at least 0');
  }
  return value;
}

export function list<T>(
  value: unknown,
  field: string,
  item: (v: unknown, f: string) => T,
  { max = MAX_LIST, min = 0, unique = true } = {},
): T[] {
  if (value === undefined || value === null) value = [];
  if (!Array.isArray(value)) throw invalid(field, 'must be a list');
  if (value.length < min || value.length > max) {
    throw invalid(field, `must hold ${min === 0 ? 'at most' : `${min} to`} ${max} items`);
  }
  const items = value.map((v, i) => item(v, `${field}[${i}]`));
  if (unique && new Set(items.map(String)).size !== items.length) {
    throw invalid(field, 'must not repeat an item');
  }
  return items;
}

/** A JSON object (not an array, not null) under `field`. */
export function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(field, 'must be an object');
  }
  return value as Record<string, unknown>;
}

/** Rejects properties the transaction does not know, so typos fail loudly. */
export function only(obj: Record<string, unknown>, field: string, keys: readonly string[]): void {
  const extra = Object.keys(obj).filter((k) => !keys.includes(k));
  if (extra.length) throw invalid(`${field}.${extra[0]}`, 'is not a known field');
}
