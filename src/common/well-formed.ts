// What every argument must be before any service, SQL statement, ledger call or recursive
// walk sees it: text PostgreSQL and JSON can hold (no NUL, no lone UTF-16 surrogate), dates
// PostgreSQL can store, and nesting shallow enough that recursive code cannot overflow the
// stack. Checked once for every GraphQL argument and REST parameter (WellFormedInputPipe).
import { INSTANT_RULE } from './instants';
import { BadUserInputError } from './errors';

/** How deeply an argument may nest objects and arrays; real FHIR resources stay far below. */
export const MAX_INPUT_DEPTH = 64;

/** Dates are RFC 3339 date-times: years 0001–9999, which PostgreSQL stores as they are. */
const MIN_DATE_MS = new Date('0001-01-01T00:00:00.000Z').getTime();
const MAX_DATE_MS = new Date('9999-12-31T23:59:59.999Z').getTime();

/**
 * String.prototype.isWellFormed (ES2024, in Node 20), which the ES2023 lib does not declare:
 * native, where the lone-surrogate regular expression it replaces took a quarter of a second
 * over a 10,000-entry bundle, on the event loop.
 */
const isWellFormed = (text: string) =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/** A JavaScript instant that is a valid RFC 3339 date-time PostgreSQL can store. */
export function isStorableInstant(ms: number): boolean {
  return Number.isFinite(ms) && ms >= MIN_DATE_MS && ms <= MAX_DATE_MS;
}

/**
 * Throws BadUserInputError naming the offending part of `value` (as `field` plus the path
 * inside it), never quoting it.
 */
export function assertWellFormed(value: unknown, field: string): void {
  visit(value, [field], 1);
}

type Path = (string | number)[];

function visit(value: unknown, path: Path, depth: number): void {
  // A literal such as 1e400 reads as Infinity: no JSON, FHIR or column holds it.
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new BadUserInputError(
      `${render(path)} must be a finite number (${value} is beyond what a double holds).`,
      render(path),
    );
  }
  if (typeof value === 'string') {
    const problem = textProblem(value);
    if (problem) throw new BadUserInputError(`${render(path)} ${problem}.`, render(path));
    return;
  }
  if (value instanceof Date) {
    if (!isStorableInstant(value.getTime())) {
      throw new BadUserInputError(`${render(path)} must be ${INSTANT_RULE}.`, render(path));
    }
    return;
  }
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return;
  if (depth > MAX_INPUT_DEPTH) {
    // The message names the argument; `field` says where inside it the limit was crossed.
    throw new BadUserInputError(
      `${path[0]} nests objects and arrays more than ${MAX_INPUT_DEPTH} levels deep (the limit); no valid input does.`,
      render(path),
    );
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      visit(value[i], path, depth + 1);
      path.pop();
    }
    return;
  }
  for (const key of Object.keys(value)) {
    const problem = textProblem(key);
    if (problem) {
      throw new BadUserInputError(`A property name in ${render(path)} ${problem}.`, render(path));
    }
    path.push(key);
    visit((value as Record<string, unknown>)[key], path, depth + 1);
    path.pop();
  }
}

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'contains a NUL character, which text cannot hold';
  if (!isWellFormed(text)) return 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

/** `input.resource.code.coding[0]`; a name that is not a plain identifier is not quoted. */
function render(path: Path): string {
  let out = String(path[0]);
  for (const segment of path.slice(1)) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += /^[A-Za-z_$][\w$-]{0,63}$/.test(segment) ? `.${segment}` : '[…]';
  }
  return out;
}
