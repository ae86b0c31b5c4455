// PostgreSQL array literals for bulk parameters ($1::uuid[] in an INSERT ... SELECT FROM unnest).
// node-postgres writes one too, but quotes and escapes every element with two regular
// expressions each: for a training round's access-log append (2,000 events, nine columns of
// ids, hashes and base64) that took 7-20 ms of the API's thread before the statement left.
// Here an element that cannot be mistaken for anything else (ids, hex, base64, numbers) is
// written as it is, and only the others are quoted.

/** A value of a one-dimensional array parameter: null (or undefined) is SQL NULL. */
export type ArrayElement = string | number | boolean | null | undefined;

/** Written bare: no quote, backslash, brace, comma or space, and not the word NULL. */
const BARE = /^[A-Za-z0-9._:+/=@-]+$/;
const NULL_WORD = /^null$/i;

/**
 * The text of a one-dimensional PostgreSQL array of `values`, as its input function reads it
 * (`array_in`): what node-postgres would send for the same array, fewer quotes aside.
 */
export function arrayLiteral(values: readonly ArrayElement[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    out += element(values[i]);
  }
  return out + '}';
}

function element(value: ArrayElement): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
    return String(value);
  }
  if (BARE.test(value) && !NULL_WORD.test(value)) return value;
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}
