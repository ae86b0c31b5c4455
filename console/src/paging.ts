// Reading the API's paged lists (records, the access log, my patients), which answer at most
// 100 items a page and a `nextCursor` for the rest: all of a list at once, or page by page.
import { useEffect, useRef, useState } from 'react';
import { ApiError } from './api';
import { Action, Loaded, useAction, useLoad } from './common';

export interface Paged<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Past this many pages a list is refused rather than shown in part: a chart that silently
 * stops at some count is the failure this module exists to prevent.
 */
const MAX_PAGES = 1000;

/** Every item of a paged query, following `nextCursor` until the last page. */
export async function allPages<T>(page: (after: string | null) => Promise<Paged<T>>): Promise<T[]> {
  const items: T[] = [];
  const seen = new Set<string>();
  let after: string | null = null;
  for (let i = 0; i < MAX_PAGES; i++) {
    const got: Paged<T> = await page(after);
    items.push(...got.items);
    if (!got.nextCursor) return items;
    if (seen.has(got.nextCursor)) {
      throw new ApiError('INTERNAL', 'The server gave the same page twice; the list is not shown.');
    }
    seen.add(got.nextCursor);
    after = got.nextCursor;
  }
  throw new ApiError(
    'INTERNAL',
    `The list has more than ${MAX_PAGES} pages, too many to show here in full.`,
  );
}

export interface PagedList<T> {
  /** The first page's load (its error, `loading`, and `reload`, which starts again from it). */
  first: Loaded<Paged<T>>;
  /** The items so far: the first page, then each older page asked for. */
  items: T[];
  /** Whether an older page remains. */
  hasOlder: boolean;
  /** Fetching the next older page: busy while it runs, and its error. */
  older: Action;
  loadOlder: () => Promise<void>;
}

/**
 * A list shown newest first, one page at a time: the first page now (again when `deps` change
 * or on `first.reload`), each older one when asked for.
 */
export function usePagedList<T>(
  page: (after: string | null) => Promise<Paged<T>>,
  deps: unknown[],
): PagedList<T> {
  const first = useLoad(() => page(null), deps);
  const [older, setOlder] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  // Each reload of the first page starts a new list: an older page asked for before it is dropped.
  const generation = useRef(0);
  useEffect(() => {
    generation.current++;
    setOlder([]);
    setCursor(first.data?.nextCursor ?? null);
  }, [first.data]);
  const action = useAction();
  const loadOlder = () =>
    action.run(async () => {
      if (!cursor) return;
      const asked = generation.current;
      const got = await page(cursor);
      if (asked !== generation.current) return;
      setOlder((o) => [...o, ...got.items]);
      setCursor(got.nextCursor);
    });
  return {
    first,
    items: [...(first.data?.items ?? []), ...older],
    hasOlder: cursor !== null,
    older: action,
    loadOlder,
  };
}
