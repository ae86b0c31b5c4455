// How the Fabric adapter reaches its organisation's peer, read from the environment
// (LEDGER=fabric). It validates its own variables so that the adapter can be configured
// without the API's AppConfig; the same rules belong in src/config/config.ts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export interface FabricLedgerConfig {
  /** host:port of the organisation's peer (its Gateway service). */
  peerEndpoint: string;
  /** The TLS server name to expect when it differs from the endpoint's host. */
  peerHostAlias?: string;
  /** PEM file of the CA that issued the peer's TLS certificate. */
  tlsCaPath: string;
  mspId: string;
  /** PEM file of the client identity's X.509 certificate. */
  certPath: string;
  /** PEM file of its private key (a directory holding exactly one key file also works). */
  keyPath: string;
  channel: string;
  chaincode: string;
}

const text = (what: string) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.string({ message: `is required with LEDGER=fabric (${what})` }),
  );

const file = (what: string) =>
  text(what).refine((p) => existsSync(p), { message: `must name a readable file (${what})` });

const name = (fallback: string) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,248}$/, 'must be a lower-case Fabric name')
      .default(fallback),
  );

const schema = z.object({
  FABRIC_PEER_ENDPOINT: text('host:port of the peer').refine(
    (v) => /^[^\s:/]+:\d{1,5}$/.test(v),
    'must be host:port, e.g. 127.0.0.1:7151',
  ),
  FABRIC_PEER_HOST_ALIAS: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.string().optional(),
  ),
  FABRIC_TLS_CA: file("PEM of the peer's TLS CA"),
  FABRIC_MSP_ID: text('e.g. Org1MSP').refine(
    (v) => /^[A-Za-z0-9._-]{1,128}$/.test(v),
    'must be an MSP id such as Org1MSP',
  ),
  FABRIC_CERT: file("PEM of the client's certificate"),
  FABRIC_KEY: file("PEM of the client's private key, or its keystore directory"),
  FABRIC_CHANNEL: name('health'),
  FABRIC_CHAINCODE: name('custodia'),
});

/**
 * Reads and checks the FABRIC_* variables; throws one line naming the first bad variable
 * (never echoing a value, which could be a path to a key).
 */
export function fabricConfigFromEnv(env: NodeJS.ProcessEnv = process.env): FabricLedgerConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`Invalid configuration: ${String(issue.path[0])} ${issue.message}`);
  }
  const e = parsed.data;
  return {
    peerEndpoint: e.FABRIC_PEER_ENDPOINT,
    peerHostAlias: e.FABRIC_PEER_HOST_ALIAS,
    tlsCaPath: e.FABRIC_TLS_CA,
    mspId: e.FABRIC_MSP_ID,
    certPath: e.FABRIC_CERT,
    keyPath: keyFile(e.FABRIC_KEY),
    channel: e.FABRIC_CHANNEL,
    chaincode: e.FABRIC_CHAINCODE,
  };
}

/** An MSP keystore holds the key under a generated name: accept the directory too. */
function keyFile(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const files = readdirSync(path).filter((f) => statSync(join(path, f)).isFile());
  if (files.length !== 1) {
    throw new Error(
      'Invalid configuration: FABRIC_KEY names a directory that does not hold exactly one key file',
    );
  }
  return join(path, files[0]);
}
