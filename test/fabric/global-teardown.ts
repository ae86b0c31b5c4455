// Always takes the network down, so that no Fabric process outlives the run (set
// FABRIC_KEEP_NETWORK=1 to keep it for another run while working on the suites), and stops
// the organisations' PostgreSQL servers.
import { rm } from 'node:fs/promises';
import { networkSh } from './network-script';

export default async function globalTeardown(): Promise<void> {
  for (const pg of globalThis.__CUSTODIA_FABRIC_PG__ ?? []) {
    await pg.server.stop();
    await rm(pg.dir, { recursive: true, force: true });
  }
  if (process.env.FABRIC_KEEP_NETWORK === '1') return;
  networkSh('down');
}
