import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fabricConfigFromEnv } from './fabric-config';

describe('fabricConfigFromEnv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custodia-fabric-config-'));
  const file = (name: string) => {
    const path = join(dir, name);
    writeFileSync(path, '-----BEGIN TEST-----\n');
    return path;
  };
  const env = {
    FABRIC_PEER_ENDPOINT: '127.0.0.1:7151',
    FABRIC_TLS_CA: file('ca.pem'),
    FABRIC_MSP_ID: 'Org1MSP',
    FABRIC_CERT: file('cert.pem'),
    FABRIC_KEY: file('key.pem'),
  };

  it('reads a complete environment, with channel health and chaincode custodia by default', () => {
    expect(fabricConfigFromEnv(env)).toEqual({
      peerEndpoint: '127.0.0.1:7151',
      peerHostAlias: undefined,
      tlsCaPath: env.FABRIC_TLS_CA,
      mspId: 'Org1MSP',
      certPath: env.FABRIC_CERT,
      keyPath: env.FABRIC_KEY,
      channel: 'health',
      chaincode: 'custodia',
    });
  });

  it('takes the one key of an MSP keystore directory', () => {
    const keystore = join(dir, 'keystore');
    mkdirSync(keystore);
    writeFileSync(join(keystore, 'priv_sk'), 'key');
    expect(fabricConfigFromEnv({ ...env, FABRIC_KEY: keystore }).keyPath).toBe(
      join(keystore, 'priv_sk'),
    );
  });

  it('names the first missing or bad variable, without echoing its value', () => {
    const { FABRIC_MSP_ID: _omitted, ...missing } = env;
    void _omitted;
    expect(() => fabricConfigFromEnv(missing)).toThrow(/^Invalid configuration: FABRIC_MSP_ID /);
    expect(() => fabricConfigFromEnv({ ...env, FABRIC_PEER_ENDPOINT: 'peer0' })).toThrow(
      /FABRIC_PEER_ENDPOINT must be host:port/,
    );
    expect(() => fabricConfigFromEnv({ ...env, FABRIC_CERT: '/nonexistent/secret.pem' })).toThrow(
      /^Invalid configuration: FABRIC_CERT must name a readable file \(PEM of the client's certificate\)$/,
    );
    expect(() => fabricConfigFromEnv({ ...env, FABRIC_CHANNEL: 'Health!' })).toThrow(
      /FABRIC_CHANNEL must be a lower-case Fabric name/,
    );
  });
});
