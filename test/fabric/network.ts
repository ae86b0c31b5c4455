// Brings the native Fabric network up and down for the Fabric suites, and tells them how to
// reach it (the FABRIC_* variables that network.sh writes for Org1's and Org2's client users).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fabricConfigFromEnv, FabricLedgerConfig } from '../../src/ledger/fabric';

const NETWORK_SH = join(__dirname, '..', '..', 'fabric-network', 'network.sh');

export type FabricNode = 'orderer' | 'peer0.org1' | 'peer0.org2' | 'chaincode';

/** Runs network.sh; its progress goes to our stderr, its standard output is returned. */
export function networkSh(
  ...command: ['up' | 'down' | 'env'] | ['stop' | 'start', FabricNode]
): string {
  return execFileSync('bash', [NETWORK_SH, ...command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    // A cold build of the Fabric binaries takes minutes; bringing the network up, seconds.
    timeout: 20 * 60_000,
  });
}

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
  const env = networkEnv();
  if (org === 1) return fabricConfigFromEnv(env);
  return fabricConfigFromEnv({
    ...env,
    FABRIC_PEER_ENDPOINT: env.FABRIC_ORG2_PEER_ENDPOINT,
    FABRIC_PEER_HOST_ALIAS: 'peer0.org2.custodia.local',
    FABRIC_TLS_CA: env.FABRIC_ORG2_TLS_CA,
    FABRIC_MSP_ID: 'Org2MSP',
    FABRIC_CERT: env.FABRIC_ORG2_CERT,
    FABRIC_KEY: env.FABRIC_ORG2_KEY,
  });
}
