// Always takes the network down, so that no Fabric process outlives the run; set
// FABRIC_KEEP_NETWORK=1 to keep it for another run while working on the suites.
import { networkSh } from './network-script';

export default function globalTeardown(): void {
  if (process.env.FABRIC_KEEP_NETWORK === '1') return;
  networkSh('down');
}
