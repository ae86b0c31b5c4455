// Opaque keyset cursors over (createdAt, id): stable while rows are added, no OFFSET scans.
import { BadUserInputError } from './errors';
import { isUuid } from './ids';
import { isStorableInstant } from './well-formed';

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

export interface PagePosition {
  createdAt: Date;
  id: string;
}

export function pageSize(first: number | null | undefined): number {
  if (first === undefined || first === null) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw new BadUserInputError(`first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
  }
  return first;
}

export function encodeCursor(p: PagePosition): string {
  return Buffer.from(JSON.stringify([p.createdAt.getTime(), p.id])).toString('base64url');
}

export function decodeCursor(cursor: string | null | undefined): PagePosition | undefined {
  if (cursor === undefined || cursor === null) return undefined;
  try {
    const [ms, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    // A position this API issued is a row's creation time, which PostgreSQL stored: anything
    // outside what it can store (or a Date can hold) was not issued here.
    if (
      Number.isSafeInteger(ms) &&
      isStorableInstant(ms as number) &&
      typeof id === 'string' &&
      isUuid(id)
    ) {
      return { createdAt: new Date(ms as number), id };
    }
  } catch {
    // fall through
  }
  throw new BadUserInputError(
    'after is not a cursor this API issued; pass the nextCursor of the previous page',
    'after',
  );
}

/** Cursors over an append-only sequence (newest first): the last seq seen. */
export function encodeSeqCursor(seq: number): string {
  return Buffer.from(JSON.stringify(['s', seq])).toString('base64url');
}

export function decodeSeqCursor(cursor: string | null | undefined): number | undefined {
  if (cursor === undefined || cursor === null) return undefined;
  try {
    const [tag, seq] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (tag === 's' && Number.isSafeInteger(seq) && (seq as number) > 0) return seq as number;
  } catch {
    // fall through
  }
  throw new BadUserInputError(
    'after is not a cursor this API issued; pass the nextCursor of the previous page',
    'after',
  );
}
