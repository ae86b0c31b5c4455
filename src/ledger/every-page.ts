// The chaincode's paged listings (ListConsents, ListPatientKeyrings, ListRecordAnchors) read
// to the end: each answers one page under its own name and the bookmark for the next ('' after
// the last).
import type { ContractName, Ledger } from './ledger.port';

/** Entries asked per call (the chaincode's most is 1,000). */
const LEDGER_PAGE = 500;

export async function everyPage<T>(
  ledger: Pick<Ledger, 'evaluate'>,
  contract: ContractName,
  fn: string,
  field: string,
): Promise<T[]> {
  const all: T[] = [];
  let bookmark = '';
  do {
    const page = await ledger.evaluate<Record<string, unknown> & { bookmark: string }>(
      contract,
      fn,
      [String(LEDGER_PAGE), bookmark],
    );
    all.push(...(page[field] as T[]));
    bookmark = page.bookmark;
  } while (bookmark);
  return all;
}
