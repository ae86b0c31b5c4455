// The chaincode as fabric-chaincode-node runs it: our contracts routed by fabric-shim's
// ChaincodeFromContract, here with a stub in place of the peer. This is where
// `org.hyperledger.fabric:GetMetadata` runs, which serialises the contracts' metadata with
// class-transformer's classToPlain (a release of class-transformer without it broke it).
import './testing/quiet-logs';
import { JSONSerializer } from 'fabric-contract-api';
import { contracts } from './index';

// fabric-shim's router has no type declarations; only what this spec calls of it.
interface ShimResponse {
  status: number;
  message?: string;
  payload?: Buffer;
}
interface ContractRouter {
  Invoke(stub: unknown): Promise<ShimResponse>;
}
type RouterClass = new (
  contracts: unknown[],
  serializers: unknown,
  metadata: object,
  title: string,
  version: string,
) => ContractRouter;

// A self-signed test certificate (no key is kept): the router builds a ClientIdentity from the
// creator of every transaction before it dispatches, so the creator must parse as X.509.
const CREATOR_PEM = `-----BEGIN CERTIFICATE-----
MIIB2jCCAYGgAwIBAgIUYW0UOxwPx3/4O6aiuZg2Bz98HDYwCgYIKoZIzj0EAwIw
QjEiMCAGA1UEAwwZVXNlcjFAb3JnMS5jdXN0b2RpYS5sb2NhbDEcMBoGA1UECgwT
b3JnMS5jdXN0b2RpYS5sb2NhbDAgFw0yNjExMzAxNTIwMzVaGA8yMTI2MTEwNjE1
MjAzNVowQjEiMCAGA1UEAwwZVXNlcjFAb3JnMS5jdXN0b2RpYS5sb2NhbDEcMBoG
A1UECgwTb3JnMS5jdXN0b2RpYS5sb2NhbDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABFc2gJUOf2p5b5+k3xZlq1G6Cn3fzXOWYsyuRQuRR4ZTP8eZWwPO7fPPQ29Q
UB9xeigpvrqLbEOQX/NR5xbNpB+jUzBRMB0GA1UdDgQWBBRuppw3q6O22iEKaU0c
r6zzPhqn8jAfBgNVHSMEGDAWgBRuppw3q6O22iEKaU0cr6zzPhqn8jAPBgNVHRMB
Af8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIESO2ZdC7Kge8s5z5Gw1BYT6bSRS
Dx7kCOzPYCNDaRKsAiATViRSkA+BoTWxxKXsu0fn7DM7DijNJlcr6pfEXk6aMQ==
-----END CERTIFICATE-----
`;

/** A peer's stub for one transaction calling `fn` with `args`; nothing else is needed. */
function stubFor(fn: string, ...args: string[]) {
  return {
    getBufferArgs: () => [fn, ...args].map((a) => Buffer.from(a)),
    getTxID: () => 'tx-metadata-spec',
    getChannelID: () => 'health',
    getCreator: () => ({ mspid: 'Org1MSP', idBytes: Buffer.from(CREATOR_PEM) }),
  };
}

async function router(): Promise<ContractRouter> {
  const { default: ChaincodeFromContract } = (await import(
    // @ts-expect-error fabric-shim ships no declarations for its contract router
    'fabric-shim/lib/contract-spi/chaincodefromcontract'
  )) as { default: RouterClass };
  // The serialisers fabric-chaincode-node uses when the module names none (its bootstrap).
  const serializers = {
    transaction: 'jsonSerializer',
    serializers: { jsonSerializer: JSONSerializer },
  };
  return new ChaincodeFromContract([...contracts], serializers, {}, '@custodia/chaincode', '0.1.0');
}

describe('the chaincode as fabric-chaincode-node routes it', () => {
  it('answers org.hyperledger.fabric:GetMetadata with every contract and its transactions', async () => {
    const response = await (await router()).Invoke(stubFor('org.hyperledger.fabric:GetMetadata'));
    expect(response.message ?? '').toBe('');
    expect(response.status).toBe(200);
    const metadata = JSON.parse(response.payload!.toString('utf8')) as {
      contracts: Record<string, { transactions: { name: string }[] }>;
    };
    expect(Object.keys(metadata.contracts).sort()).toEqual(
      [
        'audit',
        'consent',
        'decisions',
        'keys',
        'org.hyperledger.fabric',
        'records',
        'training',
      ].sort(),
    );
    const names = (contract: string) =>
      metadata.contracts[contract].transactions.map((t) => t.name);
    expect(names('audit')).toEqual(expect.arrayContaining(['AnchorAuditHead', 'GetAuditHead']));
    expect(names('consent')).toEqual(expect.arrayContaining(['GrantConsent', 'GetConsent']));
    expect(names('keys')).toEqual(
      expect.arrayContaining([
        'RegisterPatientKey',
        'RemovePatientKey',
        'SetSignedConsent',
        'GetPatientKeys',
      ]),
    );
  });

  it("serialises an object result, which goes through class-transformer's classToPlain", () => {
    const buffer = new JSONSerializer().toBuffer({ contracts: { audit: {} } }, {});
    expect(JSON.parse(buffer.toString('utf8'))).toEqual({ contracts: { audit: {} } });
  });
});
