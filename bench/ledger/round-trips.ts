// Costs of reading world state with the ledger idle: one key per round trip as the embedded
// ledger's getState does (unnamed statement: parsed and planned every time), the same with a
// named prepared statement, and one batched lookup of a whole block's keys. Used by
// `bench:ledger --query-timing` to show what the per-transaction getState round trip costs.
import { Pool } from 'pg';

export interface RoundTrip {
  query: string;
  /** Mean wall time per key read, microseconds. */
  usPerKey: number;
  keys: number;
}

export async function measureRoundTrips(pool: Pool, batch = 64): Promise<RoundTrip[]> {
  const client = await pool.connect();
  try {
    const sample = await client.query<{ key: Buffer }>(
      'SELECT key FROM ledger_world_state ORDER BY random() LIMIT 1280',
    );
    const keys = sample.rows.map((r) => r.key);
    if (keys.length < batch) return [];
    const get = 'SELECT value FROM ledger_world_state WHERE key = $1';
    const time = async (query: string, n: number, run: (i: number) => Promise<unknown>) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await run(i);
      const us = Number(process.hrtime.bigint() - t) / 1e3;
      return { query, usPerKey: Math.round((us / keys.length) * 10) / 10, keys: keys.length };
    };
    return [
      await time('SELECT 1 (floor: one round trip)', keys.length, () => client.query('SELECT 1')),
      await time(`${get} (unnamed, as getState)`, keys.length, (i) => client.query(get, [keys[i]])),
      await time(`${get} (named prepared statement)`, keys.length, (i) =>
        client.query({ name: 'bench-ledger-get', text: get, values: [keys[i]] }),
      ),
      await time(
        `SELECT key, value FROM ledger_world_state WHERE key = ANY($1) (${batch} keys a query)`,
        keys.length / batch,
        (i) =>
          client.query('SELECT key, value FROM ledger_world_state WHERE key = ANY($1::bytea[])', [
            keys.slice(i * batch, (i + 1) * batch),
          ]),
      ),
    ];
  } finally {
    client.release();
  }
}
