// Reading a whole paged list (records, the access log) for the patient's own pages.

/** A patient's own lists are short; this bounds what one page view may fetch. */
const MAX_PAGES = 20;

/** Every item of a paged query, following `nextCursor` (at most MAX_PAGES pages). */
export async function allPages<T>(
  page: (after: string | null) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<T[]> {
  const items: T[] = [];
  let after: string | null = null;
  for (let i = 0; i < MAX_PAGES; i++) {
    const got: { items: T[]; nextCursor: string | null } = await page(after);
    items.push(...got.items);
    if (!got.nextCursor) break;
    after = got.nextCursor;
  }
  return items;
}
