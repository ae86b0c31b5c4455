// Tells the Fabric suites how to reach the network that network.sh brought up (the FABRIC_*
// variables it writes for Org1's and Org2's client users), and lets them stop and start nodes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fabricConfigFromEnv, FabricLedgerConfig } from '../../src/ledger/fabric';
import { NETWORK_SH } from './network-script';

export { networkSh } from './network-script';
export type { FabricNode } from './network-script';

/** The network's FABRIC_* variables, read from the file `up` wrote. */
export function networkEnv(): Record<string, string> {
  const state = readFileSync(join(NETWORK_SH, '..', '.state'), 'utf8').trim();
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(state, 'fabric.env'), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** The adapter's configuration for a client of Org1 (hospital) or Org2 (research). */
export function orgConfig(org: 1 | 2): FabricLedgerConfig {
  return fabricConfigFromEnv(orgApiEnv(org));
}

/** The FABRIC_* variables of an API instance of Org1 or Org2, as README's "Run on Fabric" sets them. */
export function orgApiEnv(org: 1 | 2): Record<string, string> {
  const env = networkEnv();
  const fabric: Record<string, string> = { LEDGER: 'fabric' };
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('FABRIC_ORG2_')) fabric[k] = v;
  if (org === 2) {
    Object.assign(fabric, {
      FABRIC_PEER_ENDPOINT: env.FABRIC_ORG2_PEER_ENDPOINT,
      FABRIC_PEER_HOST_ALIAS: 'peer0.org2.custodia.local',
      FABRIC_TLS_CA: env.FABRIC_ORG2_TLS_CA,
      FABRIC_MSP_ID: 'Org2MSP',
      FABRIC_CERT: env.FABRIC_ORG2_CERT,
      FABRIC_KEY: env.FABRIC_ORG2_KEY,
    });
  }
  return fabric;
}

/** The PostgreSQL server the global setup started for an organisation. */
export function orgPostgresUrl(org: 1 | 2): string {
  const url = process.env[`CUSTODIA_TEST_PG_URL_ORG${org}`];
  if (!url) throw new Error('run the Fabric suites through npm run test:fabric');
  return url;
}
