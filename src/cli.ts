// The `custodia` command line. Each command prints what a person needs and nothing else
// (`token` prints only the token, so that `$(npx custodia token ...)` works).
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'pg';
import { DEV_NAME_RULE, DevIssuer, isDevName, isRole, Role, ROLES } from './auth';
import {
  generateDeviceKey,
  grantPayloadOf,
  signableChange,
  signDetached,
} from './consent/patient-signing';
import { AppConfig, ConfigError, loadConfig } from './config';
import type { EmbeddedPostgresServer } from './database/embedded-postgres';
import { runningClusterUrl } from './database/cluster-url';
import { embeddedPostgres, takeOverShutdownSignals } from './database/embedded-loader';
import { RemoteNode } from './federated/node/remote-node';
import { DEFAULT_ALPHA, MAX_PATIENTS, MAX_SITES, runSeed } from './federated/synthetic';
import { ImportFailed, importFile } from './import-command';
import { PatientsService } from './patients';
import { kekOf } from './records/crypto';
import { startServer } from './server';
import type { FabricLedger } from './ledger/fabric';
import { verifyAll } from './verification';

function config(): AppConfig {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message);
    throw e;
  }
}

function fail(message: string): never {
  process.stderr.write(`custodia: ${message}\n`);
  process.exit(1);
}

async function serve(): Promise<void> {
  const c = config();
  const server = await startServer(c, { onNotice: (line) => console.log(line) }).catch((e: Error) =>
    fail(`could not start: ${e.message}`),
  );
  const where = server.embeddedDatabase ? `embedded PostgreSQL in ${c.dataDir}` : 'DATABASE_URL';
  console.log(
    `Custodia API listening on ${server.url} (organisation ${c.orgId}, database: ${where})`,
  );
  console.log(`  GraphQL:  POST ${server.url}/graphql`);
  console.log(`  Console:  ${server.url}/console   (patients, clinicians, researchers)`);
  console.log(`  Health:   ${server.url}/health    Metrics: ${server.url}/metrics`);
  if (c.auth.mode === 'dev') {
    // The dev issuer's keys live in the data directory: a token for this server comes from it.
    const dir = process.env.CUSTODIA_DATA_DIR ? `CUSTODIA_DATA_DIR=${c.dataDir} ` : '';
    console.log(`  Token:    ${dir}npx custodia token --sub alice --role PATIENT`);
    console.log(`            (dev issuer; its keys at ${server.url}/.well-known/jwks.json)`);
  }
  console.log('Press Ctrl-C to stop.');
  if (server.embeddedDatabase) takeOverShutdownSignals();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`\n${signal}: stopping the API and the database…`);
    server.stop().then(
      () => process.exit(0),
      (e: Error) => fail(`stopped with an error: ${e.message}`),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));
}

async function token(opts: {
  sub: string;
  role: Role[];
  org?: string;
  ttl: string;
}): Promise<void> {
  const c = config();
  if (c.auth.mode !== 'dev') {
    fail(
      'tokens come from your identity provider: AUTH_JWKS_URL is set, so the dev issuer is off.',
    );
  }
  if (opts.role.length === 0) fail(`give at least one --role (${ROLES.join(', ')})`);
  const issuer = await DevIssuer.open(c.dataDir, c.auth.issuer, c.auth.audience);
  const jwt = await issuer
    .sign({ sub: opts.sub, roles: opts.role, org: opts.org, ttl: opts.ttl })
    .catch(() => fail(`--ttl ${JSON.stringify(opts.ttl)} is not a duration like 30m, 1h or 7d`));
  process.stdout.write(jwt + '\n');
}

async function verifyLedger(): Promise<void> {
  const c = config();
  // On Fabric, the peers validate the chain; everything else is checked through this
  // organisation's peer, with its identity (the FABRIC_* settings the API runs with).
  let fabric: FabricLedger | undefined;
  if (c.ledger === 'fabric') {
    // Loaded only here: the embedded mode never needs Fabric's client.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { FabricLedger: Client, fabricConfigFromEnv } = require('./ledger/fabric') as {
      FabricLedger: typeof FabricLedger;
      fabricConfigFromEnv: typeof import('./ledger/fabric').fabricConfigFromEnv;
    };
    try {
      fabric = new Client(fabricConfigFromEnv(c.fabricEnv));
    } catch (e) {
      fail(`cannot set up the Fabric client (FABRIC_* settings): ${(e as Error).message}`);
    }
  }
  let url = c.databaseUrl;
  let embedded: EmbeddedPostgresServer | undefined;
  if (!url) {
    // Beside a running server, use its database; otherwise start the embedded one briefly.
    url = await runningClusterUrl(c.dataDir, 'custodia');
    if (!url) {
      if (!existsSync(join(c.dataDir, 'pg', 'PG_VERSION'))) {
        fail(`no embedded database in ${c.dataDir} yet: start the API once (npm start)`);
      }
      embedded = new (embeddedPostgres().EmbeddedPostgresServer)({ dir: c.dataDir });
      await embedded.start();
      url = embedded.urlFor('custodia');
    }
  }
  const pool = new Pool({ connectionString: url, max: 2 });
  // pool.end() resolves before its idle connections are closed; the embedded server's shutdown
  // then terminates them (57P01), and an idle client's error with no listener killed the
  // process (exit 1, no report) on a clean ledger. Queries still fail through their promises.
  pool.on('error', () => undefined);
  let result;
  try {
    result = await verifyAll(pool, c.orgId, await kekOf(c), c.instanceId, fabric, c);
  } finally {
    await pool.end();
    await embedded?.stop();
    await fabric?.close();
  }
  for (const line of result.lines) console.log(line);
  if (!result.ok) process.exit(1);
}

async function seed(opts: {
  synthetic: true;
  patients: number;
  sites: number;
  seed: number;
  alpha: number;
}): Promise<void> {
  if (opts.sites > opts.patients) fail('--sites must not exceed --patients');
  const c = config();
  const summary = await runSeed(
    c,
    { patients: opts.patients, sites: opts.sites, seed: opts.seed, alpha: opts.alpha },
    (line) => process.stderr.write(`${line}\n`),
  ).catch((e: Error) => fail(`seeding failed: ${e.message}`));
  // The one line on stdout, so that `$(npx custodia seed ...)` can be piped to jq.
  process.stdout.write(JSON.stringify(summary) + '\n');
}

async function trainingNode(opts: {
  coordinator: string;
  token: string;
  key: string;
  once?: boolean;
}): Promise<void> {
  const c = config();
  let privateJwk;
  try {
    privateJwk = JSON.parse(await readFile(opts.key, 'utf8'));
  } catch {
    fail(`--key ${opts.key}: not a readable JSON Web Key file`);
  }
  // This instance's own database, ledger and records; no API of its own to serve.
  const server = await startServer({
    ...c,
    port: 0,
    host: '127.0.0.1',
    trainingNodes: false,
  }).catch((e: Error) => fail(`could not start: ${e.message}`));
  if (server.embeddedDatabase) takeOverShutdownSignals();
  const node = new RemoteNode(server.app, {
    coordinator: opts.coordinator.replace(/\/+$/, ''),
    token: opts.token,
    privateJwk,
  });
  try {
    if (opts.once) {
      console.log(JSON.stringify(await node.pollOnce()));
      return;
    }
    console.log(
      `Training node ${node.nodeId} of ${c.orgId} polling ${opts.coordinator}; Ctrl-C to stop.`,
    );
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    await node.run(stop.signal);
  } finally {
    await server.stop();
  }
}

async function admitPatient(opts: { sub: string; patient: string }): Promise<void> {
  const c = config();
  // This instance's own database: beside a running server, the one it runs (never a second
  // postmaster on its data dir); otherwise the embedded one, briefly.
  const databaseUrl = c.databaseUrl ?? (await runningClusterUrl(c.dataDir, 'custodia'));
  const server = await startServer({
    ...c,
    databaseUrl,
    port: 0,
    host: '127.0.0.1',
    trainingNodes: false,
  }).catch((e: Error) => fail(`could not start: ${e.message}`));
  try {
    const patient = await server.app
      .get(PatientsService)
      .admit(opts.sub, opts.patient)
      .catch((e: Error) => fail(e.message));
    console.log(
      `Admitted patient ${patient.id} at ${c.orgId}; ${opts.sub} is linked to them here.`,
    );
  } finally {
    await server.stop();
  }
}

async function importBundle(
  file: string,
  opts: { patient: string; url?: string; token?: string },
): Promise<void> {
  const token = opts.token ?? process.env.CUSTODIA_TOKEN;
  if (!token) {
    fail(
      "give --token (or CUSTODIA_TOKEN): the PATIENT's token, or a CLINICIAN's with a WRITE grant (embedded mode: npx custodia token --sub ID --role PATIENT)",
    );
  }
  const url =
    opts.url ?? process.env.CUSTODIA_URL ?? `http://localhost:${process.env.PORT ?? 3000}`;
  try {
    const report = await importFile(file, { patient: opts.patient, url, token });
    process.stdout.write(JSON.stringify(report) + '\n');
  } catch (e) {
    if (e instanceof ImportFailed) fail(`${e.code}: ${e.message}`);
    throw e;
  }
}

function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError('must be a positive number, e.g. 0.5');
  }
  return n;
}

function role(value: string, previous: Role[]): Role[] {
  const r = value.toUpperCase();
  if (!isRole(r)) throw new InvalidArgumentError(`must be one of ${ROLES.join(', ')}`);
  return previous.includes(r) ? previous : [...previous, r];
}

const MAX_TTL_SECONDS = 366 * 86_400;

/** A token lifetime: a positive whole number of s, m, h or d, at most a year. */
function lifetime(value: string): string {
  const m = /^([1-9][0-9]{0,8})(s|m|h|d)$/.exec(value);
  const seconds = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's'] : 0;
  if (!m || seconds > MAX_TTL_SECONDS) {
    throw new InvalidArgumentError('must be a positive duration like 30m, 1h or 7d, at most 366d');
  }
  return value;
}

async function keygen(opts: { out: string }): Promise<void> {
  const pair = await generateDeviceKey();
  // `wx`: never overwrite a key file; mode 0600: the private key is the patient's alone.
  await writeFile(opts.out, JSON.stringify(pair.privateJwk, null, 2) + '\n', {
    mode: 0o600,
    flag: 'wx',
  }).catch((e: NodeJS.ErrnoException) =>
    fail(
      e.code === 'EEXIST'
        ? `${opts.out} exists; not overwriting a key`
        : `could not write the key to ${JSON.stringify(opts.out.slice(0, QUOTED_ARGUMENT_MAX))}: ${WRITE_FAILURES[e.code ?? ''] ?? e.code ?? 'failed'}`,
    ),
  );
  // The mode given at creation passes through the umask: under 0777 the key was unreadable.
  await chmod(opts.out, 0o600);
  console.log(JSON.stringify(pair.publicJwk));
}

/** Why a file could not be written, for the codes a mistyped path gives. */
const WRITE_FAILURES: Readonly<Record<string, string>> = {
  ENOENT: 'no such directory (or an empty path)',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EROFS: 'the file system is read-only',
};

/** Reads a private key file, saying on stderr when others may read it too. */
async function readPrivateKey(file: string): Promise<Record<string, unknown>> {
  const key = await readJson(file, 'a private JWK from `custodia keygen`');
  if (typeof key.d !== 'string') {
    fail(
      `${file} holds no private key (a public JWK?): sign with the key file \`custodia keygen --out\` wrote`,
    );
  }
  const mode = (await stat(file)).mode & 0o777;
  if (mode & 0o077) {
    process.stderr.write(
      `custodia: warning: ${file} can be read by others (mode ${mode.toString(8).padStart(4, '0')}); it holds a private key: chmod 600 ${file}\n`,
    );
  }
  return key;
}

async function readJson(file: string, what: string): Promise<Record<string, unknown>> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error();
    return value as Record<string, unknown>;
  } catch {
    fail(`${file} is not a readable JSON object (${what})`);
  }
}

async function signGrant(opts: { key: string; input: string; patient?: string }): Promise<void> {
  const key = await readPrivateKey(opts.key);
  const { patientId, signature: _ignored, ...input } = await readJson(opts.input, 'a grant input');
  if (opts.patient !== undefined && patientId !== undefined && opts.patient !== patientId) {
    fail('--patient and the patientId in the input name different patients; give one');
  }
  const patient = opts.patient ?? patientId;
  if (typeof patient !== 'string')
    fail('name the patient: --patient ID, or patientId in the input');
  try {
    console.log(await signDetached(key, grantPayloadOf(input, patient)));
  } catch (e) {
    fail((e as Error).message);
  }
}

async function signPayload(opts: { key: string }): Promise<void> {
  const key = await readPrivateKey(opts.key);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  } catch (e) {
    fail(`could not read the payload from stdin: ${(e as Error).message}`);
  }
  if (
    !Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '')
  ) {
    fail(
      'nothing to sign: give the payload (keyPayload, settingPayload or revocationPayload) on stdin',
    );
  }
  try {
    // The payloads are canonical JSON, which never ends in a line break: the one a shell
    // pipeline adds (`jq -r`, `echo`) is not part of what was asked to be signed.
    const payload = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    // What is signed, said on stderr before it is: a grant is not signed here (sign-grant).
    process.stderr.write(`custodia: signing: ${signableChange(payload)}\n`);
    console.log(await signDetached(key, payload));
  } catch (e) {
    fail((e as Error).message);
  }
}

/** How much of a refused argument an error message quotes. */
const QUOTED_ARGUMENT_MAX = 80;

/** Commander's error text with each quoted argument cut to QUOTED_ARGUMENT_MAX characters. */
export function shortenArguments(text: string): string {
  return text.replace(/'([^'\n]*)'/g, (quoted: string, inner: string) =>
    inner.length > QUOTED_ARGUMENT_MAX
      ? `'${inner.slice(0, QUOTED_ARGUMENT_MAX)}…' (${inner.length} characters)`
      : quoted,
  );
}

function subject(value: string): string {
  if (!isDevName(value)) throw new InvalidArgumentError(DEV_NAME_RULE);
  return value;
}

export function program(): Command {
  const cli = new Command('custodia')
    .description('Custodia: patient-controlled health records with consent on a ledger')
    // An argument is echoed in the error that refuses it: a long one (a file's contents
    // pasted by mistake, say) is cut, not printed whole.
    .configureOutput({ outputError: (text, write) => write(shortenArguments(text)) });
  cli
    .command('serve')
    .description('start the API (embedded PostgreSQL and ledger unless configured otherwise)')
    .action(serve);
  cli
    .command('token')
    .description('print a signed development JWT (embedded mode only)')
    .requiredOption('--sub <id>', "the token's subject (user id)", subject)
    .option('--role <role>', `a role, repeatable: ${ROLES.join(', ')}`, role, [] as Role[])
    .option('--org <org>', 'organisation id claim', subject)
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 1h, 7d (at most 366d)', lifetime, '1h')
    .action(token);
  cli
    .command('verify-ledger')
    .description(
      "re-walk the embedded ledger's hash chain, world state and history, and the access log's chain; exit 1 on any break",
    )
    .addHelpText(
      'after',
      `
Besides the chains, every PERMIT in the access log is checked against the grant or emergency
the ledger held, and counted as patient-signed or not from the ledger's record of its grant
(never the database's copy). PERMITs under grants the patient did not sign are listed, not
failed: one "UNSIGNED: grant <id> (patient <id>): <n> PERMIT(s), access events <seq>, ..." line
per grant (the first 20 grants, the first 20 event numbers of each).
With the KEK (CUSTODIA_KEK or the data dir's), the consent projection and the signed-only
settings table are compared with the ledger's grants and patient keyrings: a row missing,
made up, altered or rolled back is a BROKEN line, and is repaired from the ledger.`,
    )
    .action(verifyLedger);
  cli
    .command('node')
    .description(
      "run this organisation's training node against a remote coordinator (trains on local patients)",
    )
    .requiredOption('--coordinator <url>', "the coordinator's base URL")
    .requiredOption('--token <jwt>', "a NODE token whose subject is this node's registered id")
    .requiredOption('--key <file>', "this node's private key (JWK, EC P-256)")
    .option('--once', 'answer the open rounds once, print what was sent, and exit')
    .action(trainingNode);
  cli
    .command('keygen')
    .description('write a patient device key pair (EC P-256, file mode 0600); print the public JWK')
    .requiredOption('--out <file>', 'where to write the private key (JWK); never overwritten')
    .action(keygen);
  cli
    .command('sign-grant')
    .description('print the compact JWS (ES256, detached) over consentPayload of a grant input')
    .requiredOption('--key <file>', 'the private key written by `custodia keygen`')
    .requiredOption('--input <file>', 'the GrantConsentInput as JSON (with its id)')
    .option('--patient <id>', "the patient's id (else patientId in the input)")
    .action(signGrant);
  cli
    .command('sign')
    .description(
      'print the compact JWS (ES256, detached) over the bytes on stdin: a keyPayload, settingPayload, revocationPayload or choicePayload as the API answered it, saying on stderr which change it makes (one trailing line break is not signed); a grant is signed with sign-grant',
    )
    .requiredOption('--key <file>', 'the private key written by `custodia keygen`')
    .action(signPayload);
  cli
    .command('admit-patient')
    .description(
      "admit a patient another organisation registered, under their ledger id, and link this organisation's identity of theirs to it (after matching them out of band)",
    )
    .requiredOption('--sub <id>', "the patient's subject (user id) at this organisation", subject)
    .requiredOption('--patient <id>', "the patient's id, as their first organisation shows it")
    .action(admitPatient);
  cli
    .command('seed')
    .description(
      'create K organisations and N synthetic patients with FHIR records, split non-IID across ' +
        'them; prints {"organizations":[...],"patients":[...]} as JSON',
    )
    .requiredOption('--synthetic', 'generate a synthetic cohort (the only kind of seed so far)')
    .option('--patients <n>', 'number of patients', wholeNumber(1, MAX_PATIENTS), 100)
    .option(
      '--sites <k>',
      'number of organisations (site-1 … site-K)',
      wholeNumber(1, MAX_SITES),
      3,
    )
    .option(
      '--seed <s>',
      'random seed: the same seed gives the same data',
      wholeNumber(0, 2 ** 32 - 1),
      42,
    )
    .option(
      '--alpha <a>',
      'Dirichlet concentration of the label split across sites (smaller: more skewed)',
      positiveNumber,
      DEFAULT_ALPHA,
    )
    .action(seed);
  cli
    .command('import')
    .description(
      "import a FHIR R4 Bundle (transaction, batch or collection) into a patient's records through the API, all or nothing; prints the ImportReport as JSON",
    )
    .argument('<file>', 'the Bundle, as a JSON file')
    .requiredOption('--patient <id>', "the patient's id")
    .option('--url <url>', 'the API (default CUSTODIA_URL, else http://localhost:$PORT)')
    .option('--token <jwt>', 'a PATIENT (or CLINICIAN) token (default CUSTODIA_TOKEN)')
    .action(importBundle);
  return cli;
}

export async function main(argv: string[]): Promise<void> {
  await program().parseAsync(argv);
}

if (require.main === module) {
  main(process.argv).catch((e: Error) => fail(e.message));
}
