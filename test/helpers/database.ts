// A fresh, empty database on the run's PostgreSQL (started by the global setup).
import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database';

export interface TestDatabase {
  url: string;
  /** With `migrate`: a pool on the migrated database. */
  pool: Pool;
  drop(): Promise<void>;
}

function defaultAdminUrl(): string {
  const url = process.env.CUSTODIA_TEST_PG_URL;
  if (!url) throw new Error('CUSTODIA_TEST_PG_URL is unset: run e2e suites through jest');
  return url;
}

async function admin(adminUrl: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A new database on the run's PostgreSQL, or on the server of `adminUrl` (the Fabric suites
 * give each organisation a PostgreSQL of its own).
 */
export async function freshDatabase({
  migrate = false,
  adminUrl = defaultAdminUrl(),
}: { migrate?: boolean; adminUrl?: string } = {}): Promise<TestDatabase> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  await admin(adminUrl, `CREATE DATABASE ${name}`);
  const target = new URL(adminUrl);
  target.pathname = `/${name}`;
  const url = target.href;
  if (migrate) {
    const ds = new DataSource(dataSourceOptions(url));
    await ds.initialize();
    await ds.runMigrations();
    await ds.destroy();
  }
  const pool = new Pool({ connectionString: url, max: 10 });
  return {
    url,
    pool,
    drop: async () => {
      await pool.end();
      await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
