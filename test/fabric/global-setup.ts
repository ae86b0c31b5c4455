// Brings the network up once for the run (reusing one that is already up and healthy).
import { networkSh } from './network-script';

export default function globalSetup(): void {
  networkSh('up');
}
