// Two API instances on the Fabric network, Org1's and Org2's, each with its own embedded
// PostgreSQL (its own data dir) and its own peer identity, as README's "Run on Fabric" serves
// them; and the propagation of consent between them: a grant or revocation made through Org1's
// GraphQL API, until Org2 enforces it for the records Org2 holds of the patient.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevIssuer } from '../../src/auth';
import { DEV_AUDIENCE, DEV_ISSUER, loadConfig } from '../../src/config';
import { ConsentProjector } from '../../src/consent';
import type { LedgerEvent } from '../../src/ledger';
import { PatientsService } from '../../src/patients';
import { RunningServer, startServer } from '../../src/server';
import { observation } from '../../test/helpers/fhir';
import { percentile, PhaseResult, round } from './grant-load';

export interface Instance {
  server: RunningServer;
  issuer: DevIssuer;
  dataDir: string;
  gql<T>(query: string, variables: Record<string, unknown>, token: string): Promise<GqlResult<T>>;
}

interface GqlResult<T> {
  data?: T;
  errors?: { extensions?: { code?: string } }[];
}

/** FABRIC_* of Org1's or Org2's client user, from the variables `network.sh up` wrote. */
export function orgFabricEnv(env: Record<string, string>, org: 1 | 2): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('FABRIC_ORG2_')) out[k] = v;
  if (org === 2) {
    Object.assign(out, {
      FABRIC_PEER_ENDPOINT: env.FABRIC_ORG2_PEER_ENDPOINT,
      FABRIC_PEER_HOST_ALIAS: 'peer0.org2.custodia.local',
      FABRIC_TLS_CA: env.FABRIC_ORG2_TLS_CA,
      FABRIC_MSP_ID: 'Org2MSP',
      FABRIC_CERT: env.FABRIC_ORG2_CERT,
      FABRIC_KEY: env.FABRIC_ORG2_KEY,
    });
  }
  return { ...out, LEDGER: 'fabric' };
}

/** Starts one organisation's API on its own embedded PostgreSQL in a fresh data dir. */
export async function startInstance(fabricEnv: Record<string, string>): Promise<Instance> {
  const dataDir = await mkdtemp(join(tmpdir(), 'custodia-bench-org-'));
  const config = loadConfig({
    ...fabricEnv,
    CUSTODIA_DATA_DIR: dataDir,
    CUSTODIA_KEK: randomBytes(32).toString('base64'),
    INSTANCE_ID: `bench-${randomBytes(4).toString('hex')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  });
  const server = await startServer(config);
  const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
  return {
    server,
    issuer,
    dataDir,
    gql: async (query, variables, token) => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as GqlResult<never>;
    },
  };
}

export async function stopInstance(i: Instance): Promise<void> {
  await i.server.stop();
  await rm(i.dataDir, { recursive: true, force: true });
}

export interface LatencySummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface PropagationResult {
  /** Grants through Org1 until Org2 serves the record under them, from Org1's commit. */
  grantEnforcedAtOrg2: LatencySummary;
  /** Revocations through Org1 until Org2 answers CONSENT_REQUIRED, from Org1's commit. */
  revokeDeniedAtOrg2: LatencySummary;
  /** The same, from the moment the mutation was sent (commit latency included). */
  grantEnforcedFromRequest: LatencySummary;
  revokeDeniedFromRequest: LatencySummary;
  /** Org1's grantConsent / revokeConsent mutation alone (endorse, order, commit). */
  commitThroughApi: LatencySummary;
  /** Reads at Org2 that did not match the ledger's decision once its event was applied. */
  mismatches: number;
}

function summary(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted[sorted.length - 1] ?? NaN),
  };
}

const LIST = `query($p: ID!) { records(patientId: $p) { items { id } } }`;
const GRANT = `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id } }`;
const REVOKE = `mutation($id: ID!) { revokeConsent(id: $id) { id } }`;

/**
 * `rounds` times, one after another: a grant to dr-bob through Org1, then its revocation.
 * Each is timed until Org2's projector has applied its event and a read by dr-bob at Org2
 * confirms it (the record served; CONSENT_REQUIRED).
 */
export async function measurePropagation(
  org1: Instance,
  org2: Instance,
  rounds: number,
): Promise<PropagationResult> {
  const alice1 = await org1.issuer.sign({ sub: 'alice', roles: ['PATIENT'] });
  const registered = await org1.gql<{ registerPatient: { id: string } }>(
    'mutation { registerPatient { id } }',
    {},
    alice1,
  );
  const patientId = registered.data!.registerPatient.id;
  await org2.server.app.get(PatientsService).admit('alice-at-org2', patientId);
  const alice2 = await org2.issuer.sign({ sub: 'alice-at-org2', roles: ['PATIENT'] });
  const created = await org2.gql<{ createRecord: { id: string } }>(
    `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id } }`,
    { input: { resource: observation() } },
    alice2,
  );
  const recordId = created.data!.createRecord.id;
  const bob = await org2.issuer.sign({ sub: 'dr-bob', roles: ['CLINICIAN'], org: 'Org2MSP' });
  const projector = org2.server.app.get(ConsentProjector).events;
  const appliedAtOrg2 = (match: (e: LedgerEvent) => boolean) =>
    new Promise<void>((resolve) => {
      const listener = (e: LedgerEvent) => {
        if (!match(e)) return;
        projector.off('applied', listener);
        resolve();
      };
      projector.on('applied', listener);
    });

  const fromCommit = { grant: [] as number[], revoke: [] as number[] };
  const fromRequest = { grant: [] as number[], revoke: [] as number[] };
  const commits: number[] = [];
  let mismatches = 0;
  const now = () => performance.now();
  for (let i = 0; i < rounds; i++) {
    const granted = appliedAtOrg2(
      (e) =>
        e.name === 'ConsentGranted' &&
        (e.payload as { patientId?: string }).patientId === patientId,
    );
    const t0 = now();
    const g = await org1.gql<{ grantConsent: { id: string } }>(
      GRANT,
      {
        input: {
          granteeType: 'CLINICIAN',
          granteeId: 'dr-bob',
          purpose: 'TREATMENT',
          actions: ['READ'],
        },
      },
      alice1,
    );
    if (!g.data) throw new Error(`grant failed: ${JSON.stringify(g.errors)}`);
    const t1 = now();
    await granted;
    const read = await org2.gql<{ records: { items: { id: string }[] } }>(
      LIST,
      { p: patientId },
      bob,
    );
    const t2 = now();
    if (read.data?.records.items[0]?.id !== recordId) mismatches++;
    commits.push(t1 - t0);
    fromCommit.grant.push(t2 - t1);
    fromRequest.grant.push(t2 - t0);

    const grantId = g.data.grantConsent.id;
    const revoked = appliedAtOrg2(
      (e) => e.name === 'ConsentRevoked' && (e.payload as { id?: string }).id === grantId,
    );
    const r0 = now();
    const r = await org1.gql(REVOKE, { id: grantId }, alice1);
    if (!r.data) throw new Error(`revocation failed: ${JSON.stringify(r.errors)}`);
    const r1 = now();
    await revoked;
    const denied = await org2.gql(LIST, { p: patientId }, bob);
    const r2 = now();
    if (denied.errors?.[0]?.extensions?.code !== 'CONSENT_REQUIRED') mismatches++;
    commits.push(r1 - r0);
    fromCommit.revoke.push(r2 - r1);
    fromRequest.revoke.push(r2 - r0);
  }
  return {
    grantEnforcedAtOrg2: summary(fromCommit.grant),
    revokeDeniedAtOrg2: summary(fromCommit.revoke),
    grantEnforcedFromRequest: summary(fromRequest.grant),
    revokeDeniedFromRequest: summary(fromRequest.revoke),
    commitThroughApi: summary(commits),
    mismatches,
  };
}

/**
 * Grants through an instance's GraphQL API (`grantConsent`: the PDP's caller checks, the ledger
 * submit, read-your-writes into the projection) by `concurrency` patients back to back, for
 * `seconds`: the API's consent path on Fabric, not only the bare gateway.
 */
export async function grantsThroughApi(
  api: Instance,
  concurrency: number,
  seconds: number,
): Promise<Omit<PhaseResult, 'meanBlockSize' | 'blocks'>> {
  const tokens = await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      const sub = `bench-patient-${randomBytes(4).toString('hex')}-${i}`;
      const token = await api.issuer.sign({ sub, roles: ['PATIENT'] });
      const r = await api.gql('mutation { registerPatient { id } }', {}, token);
      if (r.errors) throw new Error(`registerPatient failed: ${JSON.stringify(r.errors)}`);
      return token;
    }),
  );
  const latencies: number[] = [];
  let failures = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let n = 0;
  await Promise.all(
    tokens.map(async (token) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const r = await api.gql(
          GRANT,
          {
            input: {
              granteeType: 'CLINICIAN',
              granteeId: `dr-${n++ % 100}`,
              purpose: 'TREATMENT',
              actions: ['READ'],
            },
          },
          token,
        );
        if (r.errors) {
          failures++;
          firstError ??= JSON.stringify(r.errors[0].extensions);
        } else latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedSeconds = (performance.now() - start) / 1000;
  if (firstError) console.error(`  ${failures} grants failed; first: ${firstError}`);
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    txPerSec: round(latencies.length / elapsedSeconds, 1),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    total: latencies.length,
    failures,
    elapsedSeconds: round(elapsedSeconds, 3),
  };
}
