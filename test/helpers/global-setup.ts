// Starts one real PostgreSQL for the whole e2e run; each suite creates its own database on it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedPostgresServer } from '../../src/database/embedded-postgres';

declare global {
  var __CUSTODIA_PG__: { server: EmbeddedPostgresServer; dir: string } | undefined;
}

export default async function globalSetup(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'custodia-test-pg-'));
  const server = new EmbeddedPostgresServer({ dir });
  await server.start();
  globalThis.__CUSTODIA_PG__ = { server, dir };
  process.env.CUSTODIA_TEST_PG_URL = server.url;
}
