// Queries on the hot read path as named prepared statements: PostgreSQL parses and plans each
// distinct statement once per connection, rather than on every request.
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';

export async function preparedQuery<T>(
  db: DataSource,
  text: string,
  values: unknown[],
): Promise<T[]> {
  const pool = (db.driver as unknown as { master: Pool }).master;
  const name = `q${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
  const { rows } = await pool.query({ name, text, values });
  return rows as T[];
}
