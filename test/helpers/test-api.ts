// Runs the real API for an e2e suite: its own fresh database on the run's PostgreSQL, its
// own data dir (dev issuer keys) under /tmp, a random port. Talks GraphQL over HTTP.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { DevIssuer, Role } from '../../src/auth';
import { AppConfig, DEV_AUDIENCE, DEV_ISSUER, loadConfig } from '../../src/config';
import { freshDatabase, TestDatabase } from './database';
import { LogLines } from './log-lines';
import { kekOf } from '../../src/records/crypto';
import { RunningServer, startServer } from '../../src/server';
import { LEDGER } from '../../src/ledger';
import { AccessLog } from '../../src/audit';
import { FabricLedgerReader, verifyAll } from '../../src/verification';
import { observation } from './fhir';

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: {
    message: string;
    path?: string[];
    extensions: { code: string; [k: string]: unknown };
  }[];
}

export class TestApi {
  private constructor(
    public server: RunningServer,
    readonly config: AppConfig,
    readonly issuer: DevIssuer,
    /** Direct access to this suite's database, for checking storage and tampering. */
    readonly db: Client,
    private readonly dataDir: string,
    private readonly database: TestDatabase,
    /** The server's log lines, when started with `captureLogs` (then at debug level). */
    readonly logs: LogLines | undefined,
  ) {}

  /**
   * `postgresUrl`: the PostgreSQL server to make the database on (default: the run's); the
   * Fabric suites give each organisation its own.
   */
  static async start(
    env: NodeJS.ProcessEnv = {},
    { captureLogs = false, postgresUrl }: { captureLogs?: boolean; postgresUrl?: string } = {},
  ): Promise<TestApi> {
    const database = await freshDatabase({ adminUrl: postgresUrl });
    const databaseUrl = database.url;
    const dataDir = await mkdtemp(join(tmpdir(), 'custodia-e2e-'));
    const config = loadConfig({
      DATABASE_URL: databaseUrl,
      CUSTODIA_KEK: randomBytes(32).toString('base64'),
      CUSTODIA_DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: captureLogs ? 'debug' : (process.env.TEST_LOG_LEVEL ?? 'silent'),
      ...env,
    });
    const logs = captureLogs ? new LogLines() : undefined;
    const server = await startServer(config, { logTo: logs });
    const issuer = await DevIssuer.open(dataDir, DEV_ISSUER, DEV_AUDIENCE);
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    // Refusals are logged behind their answers (AccessLog.recordBehind): what a test reads
    // straight from the database is read once they are written, as the API's readers do.
    let api: TestApi | undefined = undefined;
    const settledDb = new Proxy(db, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (prop === 'query') {
          return async (...args: unknown[]) => {
            await api?.logSettled();
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    api = new TestApi(server, config, issuer, settledDb, dataDir, database, logs);
    return api;
  }

  /** Once every access event this server has logged so far is committed. */
  async logSettled(): Promise<void> {
    try {
      await this.server.app.get(AccessLog).settled();
    } catch {
      // Between a stop and a restart there is no server to wait for.
    }
  }

  get url(): string {
    return this.server.url;
  }

  token(sub: string, roles: Role | Role[], org?: string): Promise<string> {
    return this.issuer.sign({ sub, roles: Array.isArray(roles) ? roles : [roles], org });
  }

  async gql<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown> = {},
    token?: string,
  ): Promise<GraphQLResponse<T>> {
    const res = await this.post(JSON.stringify({ query, variables }), token);
    return { status: res.status, ...((await res.json()) as object) };
  }

  post(body: string, token?: string): Promise<Response> {
    return fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body,
    });
  }

  /** Data of a successful call; fails the test with the errors otherwise. */
  async ok<T = Record<string, unknown>>(
    query: string,
    variables: Record<string, unknown>,
    token: string,
  ): Promise<T> {
    const res = await this.gql<T>(query, variables, token);
    if (res.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
    return res.data as T;
  }

  /**
   * Every item of a paged list, following `nextCursor` to the end: `query` takes `$after` and
   * answers the list under `field`.
   */
  async everyItem<T>(
    query: string,
    variables: Record<string, unknown>,
    token: string,
    field: string,
  ): Promise<T[]> {
    const all: T[] = [];
    let after: string | null = null;
    do {
      const data: Record<string, { items: T[]; nextCursor: string | null }> = await this.ok(
        query,
        { ...variables, after },
        token,
      );
      all.push(...data[field].items);
      after = data[field].nextCursor;
    } while (after);
    return all;
  }

  /** Registers patient `subject`, who stores one Observation; answers their token and ids. */
  async patientWithRecord(
    subject: string,
  ): Promise<{ token: string; patientId: string; recordId: string }> {
    const token = await this.token(subject, 'PATIENT');
    const { registerPatient } = await this.ok<{ registerPatient: { id: string } }>(
      'mutation { registerPatient { id } }',
      {},
      token,
    );
    const recordId = await this.createRecord(token, observation());
    return { token, patientId: registerPatient.id, recordId };
  }

  /** The patient (`token`) stores `resource`; answers the record's id. */
  async createRecord(token: string, resource: Record<string, unknown>): Promise<string> {
    const { createRecord } = await this.ok<{ createRecord: { id: string } }>(
      'mutation($r: JSON!) { createRecord(input: { resource: $r }) { id } }',
      { r: resource },
      token,
    );
    return createRecord.id;
  }

  /** `verify-ledger` as the command runs it (with the KEK, so seals are checked too). */
  async verifyLedger(): Promise<{ ok: boolean; text: string }> {
    await this.logSettled();
    const pool = new Pool({ connectionString: this.config.databaseUrl, max: 2 });
    try {
      // On Fabric, through this instance's peer, as `custodia verify-ledger` does there.
      const fabric =
        this.config.ledger === 'fabric'
          ? (this.server.app.get(LEDGER) as unknown as FabricLedgerReader)
          : undefined;
      const result = await verifyAll(
        pool,
        this.config.orgId,
        await kekOf(this.config),
        this.config.instanceId,
        fabric,
        this.config,
      );
      return { ok: result.ok, text: result.lines.join('\n') };
    } finally {
      await pool.end();
    }
  }

  /** The server's `custodia_integrity_failures_total` counter for `kind` (0 before any). */
  async integrityFailures(kind: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`custodia_integrity_failures_total{kind="${kind}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  /**
   * The patient (`patientToken`) grants clinician `sub` READ for treatment, with any other
   * terms in `terms`; answers the grant's id.
   */
  async grantRead(
    patientToken: string,
    sub: string,
    terms: Record<string, unknown> = {},
  ): Promise<string> {
    const { grantConsent } = await this.ok<{ grantConsent: { id: string } }>(
      `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id } }`,
      {
        input: {
          granteeType: 'CLINICIAN',
          granteeId: sub,
          purpose: 'TREATMENT',
          actions: ['READ'],
          ...terms,
        },
      },
      patientToken,
    );
    return grantConsent.id;
  }

  /**
   * Stops the API and starts it again on the same database and data dir (a crash drill),
   * running `whileStopped` in between.
   */
  async restart(whileStopped?: () => Promise<void>): Promise<void> {
    await this.server.stop();
    await whileStopped?.();
    this.server = await startServer(this.config, { logTo: this.logs });
  }

  async stop(): Promise<void> {
    await this.db.end();
    await this.server.stop();
    await rm(this.dataDir, { recursive: true, force: true });
    await this.database.drop();
  }
}

/** The error codes of a response, in order. */
export function codes(res: GraphQLResponse): string[] {
  return (res.errors ?? []).map((e) => e.extensions.code);
}
