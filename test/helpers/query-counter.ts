// Counts the SQL statements the in-process API sends while a call runs, to show that a
// page costs a fixed number of round trips however many rows it holds (no N+1). Background
// work (the round closer's sweep, audit anchoring) touches other tables; only statements that
// name one of `tables` are counted, so the count is about the call under test.
import { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner';

export async function countQueries(
  tables: readonly string[],
  during: () => Promise<unknown>,
): Promise<number> {
  const pattern = new RegExp(`\\b(${tables.join('|')})\\b`, 'i');
  let count = 0;
  const original = PostgresQueryRunner.prototype.query;
  const spy = jest.spyOn(PostgresQueryRunner.prototype, 'query').mockImplementation(function (
    this: PostgresQueryRunner,
    ...args
  ) {
    if (pattern.test(String(args[0]))) count++;
    return original.apply(this, args);
  });
  try {
    await during();
  } finally {
    spy.mockRestore();
  }
  return count;
}
