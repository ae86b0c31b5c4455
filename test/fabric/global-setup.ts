// Brings the network up once for the run (reusing one that is already up and healthy), and
// starts one PostgreSQL per organisation: each organisation's API keeps its own data.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedPostgresServer } from '../../src/database/embedded-postgres';
import { networkSh } from './network-script';

declare global {
  var __CUSTODIA_FABRIC_PG__: { server: EmbeddedPostgresServer; dir: string }[] | undefined;
}

export default async function globalSetup(): Promise<void> {
  networkSh('up');
  globalThis.__CUSTODIA_FABRIC_PG__ = [];
  for (const org of [1, 2]) {
    const dir = await mkdtemp(join(tmpdir(), `custodia-fabric-pg-org${org}-`));
    const server = new EmbeddedPostgresServer({ dir });
    await server.start();
    globalThis.__CUSTODIA_FABRIC_PG__.push({ server, dir });
    process.env[`CUSTODIA_TEST_PG_URL_ORG${org}`] = server.url;
  }
}
