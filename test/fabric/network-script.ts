// Runs fabric-network/network.sh for the Fabric suites. Imports nothing of src/: the global
// setup and teardown load this outside Jest's module map (no moduleNameMapper there), before
// anything has built the chaincode package that the adapter imports.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const NETWORK_SH = join(__dirname, '..', '..', 'fabric-network', 'network.sh');

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
