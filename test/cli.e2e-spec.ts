// The `custodia` command line as a person runs it: real child processes of bin/custodia.js,
// a fresh data dir each, the embedded PostgreSQL (no DATABASE_URL), real signals.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http, { Agent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../src/common/free-port';

const ROOT = join(__dirname, '..');
const BIN = join(ROOT, 'bin', 'custodia.js');
const ROLES = ['PATIENT', 'CLINICIAN', 'RESEARCHER', 'ADMIN', 'NODE'];
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Start-up includes initdb on a fresh data dir and the migrations. */
const START_TIMEOUT = 45_000;
const STOP_TIMEOUT = 20_000;
/** An embedded PostgreSQL killed outright: crash recovery, then the API reconnects. */
const RECOVERY_TIMEOUT = 30_000;
/** A short command may first compile changed sources (bin/custodia.js does that). */
const COMMAND_TIMEOUT = 45_000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const running = new Set<Cli>();
const tempDirs: string[] = [];

/** A `custodia` process and its output so far. */
class Cli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private exited = false;
  private readonly done: Promise<Outcome>;

  /** `detached` makes it a process group leader, as a shell does with a foreground job. */
  constructor(args: string[], env: NodeJS.ProcessEnv, detached = false) {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env,
      detached,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(this);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.done = new Promise((resolve, reject) => {
      child.once('error', reject);
      // 'close' follows 'exit' once the output pipes are drained, so no output is lost.
      child.once('close', (code, signal) => {
        this.exited = true;
        running.delete(this);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Resolves when the process has exited and its output is complete. */
  finished(timeout = COMMAND_TIMEOUT): Promise<Outcome> {
    return within(this.done, timeout, () => `custodia to exit\n${this.transcript()}`);
  }

  /** Resolves once stdout holds `text`; fails at once if the process exits first. */
  waitFor(text: string, timeout = START_TIMEOUT): Promise<void> {
    const seen = new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!this.stdout.includes(text)) return;
        this.child.stdout!.off('data', check);
        resolve();
      };
      this.child.stdout!.on('data', check);
      check();
      void this.done.then(() =>
        reject(new Error(`custodia exited before printing "${text}"\n${this.transcript()}`)),
      );
    });
    return within(seen, timeout, () => `"${text}" on stdout\n${this.transcript()}`);
  }

  /** SIGINT to this process alone (as `kill -INT` sends it), and the outcome. */
  interrupt(): Promise<Outcome> {
    this.child.kill('SIGINT');
    return this.finished(STOP_TIMEOUT);
  }

  /** SIGINT to its whole process group, the PostgreSQL too, as Ctrl-C in a terminal sends it. */
  ctrlC(): Promise<Outcome> {
    process.kill(-this.child.pid!, 'SIGINT');
    return this.finished(STOP_TIMEOUT);
  }

  /** For clean-up: SIGINT, then SIGKILL if it does not stop in time. */
  async kill(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGINT');
    try {
      await this.finished(STOP_TIMEOUT);
    } catch {
      this.child.kill('SIGKILL');
      await this.finished(5_000).catch(() => undefined);
    }
  }

  transcript(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }
}

function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${what()}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'custodia-cli-'));
  tempDirs.push(dir);
  return dir;
}

/** A fresh data directory and a free port for one `custodia serve`, and where it will answer. */
async function servePlace(): Promise<{ dir: string; port: number; url: string }> {
  const dir = await dataDir();
  const port = await freePort();
  return { dir, port, url: `http://127.0.0.1:${port}` };
}

/** The environment of a person who configured nothing but what `vars` holds. */
function environment(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(DATABASE_URL|CUSTODIA_.*|AUTH_.*|PORT|HOST|ORG_ID|LOG_LEVEL|NODE_ENV|LEDGER)$/.test(k))
      env[k] = v;
  }
  return { ...env, HOST: '127.0.0.1', ...vars };
}

function custodia(args: string[], vars: Record<string, string>, detached = false): Cli {
  return new Cli(args, environment(vars), detached);
}

/** `custodia serve` on a data directory and port, once it says it is ready. */
async function serveOn(dir: string, port: number, detached = false): Promise<Cli> {
  const cli = custodia(['serve'], { CUSTODIA_DATA_DIR: dir, PORT: String(port) }, detached);
  await cli.waitFor('Press Ctrl-C to stop.');
  return cli;
}

/** stderr's lines, but for bin/custodia.js's notice that it compiled changed sources. */
function complaints(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('custodia: compiling the sources'));
}

/** Pids of live processes (not zombies awaiting their parent). */
function livePids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
}

/** Pids of live processes whose command line mentions `text` (e.g. a data dir). */
function processesMentioning(text: string): number[] {
  return livePids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
    } catch {
      return false;
    }
  });
}

/** Pids of the live children of `parent`. */
function childrenOf(parent: number): number[] {
  return livePids().filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces, so read on from its last ')'.
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
    } catch {
      return false;
    }
  });
}

/** The postmaster of the running embedded cluster in `dir`, and its workers. */
function databaseProcesses(dir: string): { pidFile: string; pids: number[] } {
  const pidFile = join(dir, 'pg', 'postmaster.pid');
  const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  return { pidFile, pids: [postmaster, ...childrenOf(postmaster)] };
}

function expectDatabaseStopped(dir: string, db: { pidFile: string; pids: number[] }): void {
  expect(existsSync(db.pidFile)).toBe(false);
  const live = livePids();
  expect(db.pids.filter((pid) => live.includes(pid))).toEqual([]);
  expect(processesMentioning(dir)).toEqual([]);
}

async function gql(
  url: string,
  query: string,
  token: string,
): Promise<{ data?: Record<string, unknown>; errors?: unknown[] }> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
}

/** A GET on `agent`, answered in full. */
function request(
  base: string,
  { agent, path }: { agent: Agent; path: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; socket: IncomingMessage['socket'] }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { agent }, (res) => {
        // Taken now: once answered, the response lets go of its (kept-alive) socket.
        const socket = res.socket;
        res.resume();
        res.once('end', () => resolve({ status: res.statusCode!, headers: res.headers, socket }));
      })
      .once('error', reject);
  });
}

/** Polls /health every 50 ms until `until(status)` holds; fails after RECOVERY_TIMEOUT. */
async function pollHealth(
  base: string,
  until: (status: number) => boolean,
): Promise<{ status: number; body: unknown }> {
  const deadline = Date.now() + RECOVERY_TIMEOUT;
  let last: { status: number; body: unknown } | undefined;
  while (Date.now() < deadline) {
    const res = await fetch(`${base}/health`).catch(() => undefined);
    if (res) {
      last = { status: res.status, body: await res.json() };
      if (until(res.status)) return last;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`/health did not reach the expected status; last: ${JSON.stringify(last)}`);
}

beforeAll(async () => {
  // bin/custodia.js compiles when dist/ is stale; do it once here so timings stay predictable.
  // The server only: rebuilding the console would empty console/dist under a browser suite
  // running beside this one (its pages then met 503s and never rendered).
  await promisify(execFile)('npm', ['run', 'build:server'], { cwd: ROOT });
}, 180_000);

afterAll(async () => {
  await Promise.all([...running].map((cli) => cli.kill()));
  // A server killed outright leaves its PostgreSQL behind: stop any still on our data dirs.
  for (const dir of tempDirs) {
    for (const pid of processesMentioning(dir)) process.kill(pid, 'SIGINT');
  }
  for (const dir of tempDirs) {
    for (let i = 0; i < 100 && processesMentioning(dir).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const pid of processesMentioning(dir)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('custodia serve in embedded mode', () => {
  let dir: string;
  let port: number;
  let url: string;
  let server: Cli;
  let alice: string;
  let alicePatientId: string;

  beforeAll(async () => {
    ({ dir, port, url } = await servePlace());
  });

  const serve = (detached = false) => serveOn(dir, port, detached);

  it(
    'starts with no configuration and says where GraphQL is and how to get a token',
    async () => {
      server = await serve();
      expect(server.stdout).toContain(`Custodia API listening on ${url}`);
      expect(server.stdout).toContain(`embedded PostgreSQL in ${dir}`);
      expect(server.stdout).toContain(`POST ${url}/graphql`);
      expect(server.stdout).toContain(`Console:  ${url}/console`);
      // The data dir named, as the dev issuer's keys are there.
      expect(server.stdout).toContain(
        `CUSTODIA_DATA_DIR=${dir} npx custodia token --sub alice --role PATIENT`,
      );
      expect(server.stdout).toContain(`${url}/.well-known/jwks.json`);
      expect(complaints(server.stderr)).toEqual([]);
    },
    START_TIMEOUT + 5_000,
  );

  it('answers /health with 200, the database and the ledger up', async () => {
    const res = await fetch(`${url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      info: { database: { status: 'up' }, ledger: { status: 'up' } },
    });
  });

  it('prints nothing but a JWT from `custodia token`, and the server accepts it', async () => {
    const out = await custodia(['token', '--sub', 'alice', '--role', 'PATIENT'], {
      CUSTODIA_DATA_DIR: dir,
    }).finished();
    expect(out.code).toBe(0);
    expect(complaints(out.stderr)).toEqual([]);
    expect(out.stdout).toMatch(/^[^\n]+\n$/);
    alice = out.stdout.trimEnd();
    expect(alice).toMatch(JWT);

    const res = await gql(url, 'mutation { registerPatient(displayName: "Alice") { id } }', alice);
    expect(res.errors).toBeUndefined();
    alicePatientId = (res.data!.registerPatient as { id: string }).id;
    expect(alicePatientId).toEqual(expect.any(String));
    expect((await gql(url, '{ me { id roles patientId } }', alice)).data).toEqual({
      me: { id: 'alice', roles: ['PATIENT'], patientId: alicePatientId },
    });
  });

  it(
    'refuses a second server on the same data dir and leaves the first one running',
    async () => {
      const second = custodia(['serve'], {
        CUSTODIA_DATA_DIR: dir,
        PORT: String(await freePort()),
      });
      const out = await second.finished(START_TIMEOUT);
      expect(out.code).toBe(1);
      expect(out.stdout).not.toContain('Press Ctrl-C to stop.');
      expect(complaints(out.stderr)).toEqual([
        expect.stringMatching(/^custodia: could not start: .* in use by process \d+/),
      ]);
      expect((await fetch(`${url}/health`)).status).toBe(200);
    },
    START_TIMEOUT + 5_000,
  );

  it(
    'stops with its database on SIGINT',
    async () => {
      const db = databaseProcesses(dir);
      expect(db.pids.length).toBeGreaterThan(1);
      const out = await server.interrupt();
      expect(out).toMatchObject({ code: 0, signal: null });
      expect(out.stdout).toMatch(/SIGINT: stopping the API and the database/);
      expect(complaints(out.stderr)).toEqual([]);
      expectDatabaseStopped(dir, db);
    },
    STOP_TIMEOUT + 5_000,
  );

  it(
    "keeps Alice's profile when served again from the same data dir",
    async () => {
      server = await serve(true);
      const me = await gql(url, '{ me { id patientId } }', alice);
      expect(me).toEqual({ data: { me: { id: 'alice', patientId: alicePatientId } } });
      const profile = await gql(url, `{ patient(id: "${alicePatientId}") { displayName } }`, alice);
      expect(profile).toEqual({ data: { patient: { displayName: 'Alice' } } });
    },
    START_TIMEOUT + 5_000,
  );

  it(
    'stops with its database on Ctrl-C in a terminal, which signals the whole process group',
    async () => {
      const db = databaseProcesses(dir);
      const out = await server.ctrlC();
      expect(out).toMatchObject({ code: 0, signal: null });
      expect(complaints(out.stderr)).toEqual([]);
      expectDatabaseStopped(dir, db);
    },
    STOP_TIMEOUT + 5_000,
  );

  it.each(['kek', 'dev-issuer.jwk.json'])(
    'keeps the key file %s readable by its owner only',
    async (file) => {
      expect((await stat(join(dir, file))).mode & 0o777).toBe(0o600);
    },
  );
});

describe('custodia serve recovers by itself', () => {
  let dir: string;
  let port: number;
  let url: string;
  let server: Cli;
  let alice: string;
  let alicePatientId: string;

  beforeAll(async () => {
    ({ dir, port, url } = await servePlace());
  });

  const serve = () => serveOn(dir, port);

  it(
    'stops the PostgreSQL that a killed API left running, says so in one line, and serves the same data',
    async () => {
      server = await serve();
      alice = (
        await custodia(['token', '--sub', 'alice', '--role', 'PATIENT'], {
          CUSTODIA_DATA_DIR: dir,
        }).finished()
      ).stdout.trimEnd();
      const res = await gql(
        url,
        'mutation { registerPatient(displayName: "Alice") { id } }',
        alice,
      );
      alicePatientId = (res.data!.registerPatient as { id: string }).id;
      const [orphan] = databaseProcesses(dir).pids;

      server.child.kill('SIGKILL');
      expect((await server.finished()).signal).toBe('SIGKILL');
      expect(livePids()).toContain(orphan);

      server = await serve();
      const notices = server.stdout.split('\n').filter((l) => l.includes('embedded PostgreSQL'));
      expect(notices.filter((l) => l.startsWith('Stopped'))).toEqual([
        `Stopped the embedded PostgreSQL (pid ${orphan}, fast shutdown) that a process which is ` +
          `gone left running on ${join(dir, 'pg')}; starting it afresh.`,
      ]);
      expect(livePids()).not.toContain(orphan);
      expect(complaints(server.stderr)).toEqual([]);
      expect(await gql(url, '{ me { id patientId } }', alice)).toEqual({
        data: { me: { id: 'alice', patientId: alicePatientId } },
      });
    },
    2 * START_TIMEOUT,
  );

  it(
    'restarts its PostgreSQL after a kill -9, /health says 503 meanwhile and 200 after, and writes work again',
    async () => {
      const [postmaster] = databaseProcesses(dir).pids;
      process.kill(postmaster, 'SIGKILL');
      // The outage is reported (the restart waits 0.5 s before its first attempt)...
      const outage = await pollHealth(url, (status) => status === 503);
      expect(outage.body).toMatchObject({
        status: 'error',
        error: { database: { status: 'down' } },
      });
      // ...the supervisor says when the database is back...
      await server.waitFor('"msg":"embedded PostgreSQL restarted"', RECOVERY_TIMEOUT);
      expect(databaseProcesses(dir).pids[0]).not.toBe(postmaster);
      // ...and the API with it, on its own.
      await pollHealth(url, (status) => status === 200);
      expect(await gql(url, '{ me { id patientId } }', alice)).toEqual({
        data: { me: { id: 'alice', patientId: alicePatientId } },
      });
      const grant = await gql(
        url,
        `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "bob",
           purpose: TREATMENT, actions: [READ] }) { id status } }`,
        alice,
      );
      expect(grant).toEqual({
        data: { grantConsent: { id: expect.any(String), status: 'ACTIVE' } },
      });
    },
    RECOVERY_TIMEOUT + 10_000,
  );

  it(
    'on SIGTERM finishes the request in flight, closes an idle keep-alive connection and exits 0 within 5 s, its PostgreSQL stopped',
    async () => {
      const db = databaseProcesses(dir);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const first = await request(url, { agent, path: '/health' });
      // The keep-alive outlives a load balancer's idle timeout (65 s by default).
      expect(first.headers['keep-alive']).toBe('timeout=65');

      // A request in flight: its body is half sent when the signal comes.
      const body = JSON.stringify({ query: '{ me { id patientId } }' });
      const inFlight = http.request(`${url}/graphql`, {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${alice}`,
        },
      });
      const answer = new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>(
        (resolve, reject) => {
          inFlight.once('error', reject);
          inFlight.once('response', (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (s: string) => (text += s));
            res.once('end', () =>
              resolve({ status: res.statusCode!, headers: res.headers, body: text }),
            );
          });
        },
      );
      inFlight.write(body.slice(0, 10));
      // A round trip on the idle connection, after the half request left: the server has it.
      const second = await request(url, { agent, path: '/health' });
      expect(second.status).toBe(200);
      const idleSocketClosed = new Promise<void>((resolve) => second.socket.once('close', resolve));

      const signalled = Date.now();
      server.child.kill('SIGTERM');
      await server.waitFor('SIGTERM: stopping the API and the database', STOP_TIMEOUT);
      inFlight.end(body.slice(10));
      const answered = await answer;
      expect(answered.status).toBe(200);
      expect(JSON.parse(answered.body)).toEqual({
        data: { me: { id: 'alice', patientId: alicePatientId } },
      });
      expect(answered.headers.connection).toBe('close');

      const out = await server.finished(STOP_TIMEOUT);
      const elapsed = Date.now() - signalled;
      expect(out).toMatchObject({ code: 0, signal: null });
      expect(elapsed).toBeLessThan(5_000);
      await idleSocketClosed;
      agent.destroy();
      expect(complaints(out.stderr)).toEqual([]);
      expectDatabaseStopped(dir, db);
    },
    STOP_TIMEOUT + 5_000,
  );
});

describe('custodia command-line errors', () => {
  it('refuses to print a dev token when an external identity provider is configured', async () => {
    const out = await custodia(['token', '--sub', 'alice', '--role', 'PATIENT'], {
      CUSTODIA_DATA_DIR: await dataDir(),
      AUTH_JWKS_URL: 'https://idp.example.org/.well-known/jwks.json',
      AUTH_ISSUER: 'https://idp.example.org/',
      AUTH_AUDIENCE: 'custodia',
    }).finished();
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(complaints(out.stderr)).toEqual([
      expect.stringMatching(/^custodia: tokens come from your identity provider: AUTH_JWKS_URL/),
    ]);
  });

  it('stops serve on a bad PORT with one stderr line naming it, and starts nothing', async () => {
    const dir = await dataDir();
    const out = await custodia(['serve'], { CUSTODIA_DATA_DIR: dir, PORT: 'abc' }).finished();
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(complaints(out.stderr)).toEqual([
      expect.stringMatching(/^custodia: Invalid configuration: PORT /),
    ]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a role outside the contract and names the allowed ones', async () => {
    const out = await custodia(['token', '--sub', 'alice', '--role', 'WIZARD'], {
      CUSTODIA_DATA_DIR: await dataDir(),
    }).finished();
    expect(out.code).not.toBe(0);
    expect(out.stdout).toBe('');
    const [complaint, ...more] = complaints(out.stderr);
    expect(more).toEqual([]);
    expect(complaint).toMatch(/--role/);
    expect(complaint).toContain('WIZARD');
    for (const role of ROLES) expect(complaint).toContain(role);
  });

  it.each([
    ['--ttl', '-1h'],
    ['--ttl', '0s'],
    ['--ttl', '100000000d'],
    ['--org', ''],
  ])('refuses %s %j, which would mint a dead, endless or malformed token', async (flag, value) => {
    const out = await custodia(['token', '--sub', 'alice', '--role', 'PATIENT', flag, value], {
      CUSTODIA_DATA_DIR: await dataDir(),
    }).finished();
    expect(out.code).not.toBe(0);
    expect(out.stdout).toBe('');
    expect(complaints(out.stderr).join('\n')).toContain(flag);
  });
});
