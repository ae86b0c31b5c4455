// Each server under test runs in its own child process, so its peak RSS and CPU profile are
// its own and not the load generator's. The parent drives it over IPC: ready → (profile) →
// stop. Peak RSS is the kernel's high-water mark (VmHWM), reset once the data is seeded so
// that it covers the load alone.
import { ChildProcess, fork } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

type ParentMessage =
  | { type: 'stop' }
  | { type: 'profile-start' }
  | { type: 'profile-stop'; file: string }
  | { type: 'memory' };
type ChildMessage =
  | { type: 'ready'; url: string }
  | { type: 'failed'; message: string }
  | { type: 'profile-started' }
  | { type: 'profile-written' }
  | { type: 'memory'; usage: ServerMemory };

/** The server's memory as its own process sees it, after a full collection when allowed. */
export interface ServerMemory {
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  /** Whether a full GC ran first (the child was started with --expose-gc). */
  collected: boolean;
}

export interface ServedApp {
  url: string;
  stop(): Promise<void>;
}

/** Child side: starts the server, reports its URL, and obeys the parent until told to stop. */
export function serveFromChild(start: () => Promise<ServedApp>): void {
  const send = (m: ChildMessage) => process.send!(m);
  const started = start();
  let session: Session | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // A server still starting is stopped once it is up, so its database does not linger.
    await (await started.catch(() => undefined))?.stop();
    process.disconnect?.();
    // Handles left by libraries (pools, timers) must not keep a finished server alive.
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('message', (m: ParentMessage) => {
    void (async () => {
      if (m.type === 'stop') return stop();
      if (m.type === 'memory') return send({ type: 'memory', usage: ownMemory() });
      if (m.type === 'profile-start') {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        return send({ type: 'profile-started' });
      }
      if (m.type === 'profile-stop' && session) {
        const { profile } = await session.post('Profiler.stop');
        await writeFile(m.file, JSON.stringify(profile));
        session.disconnect();
        return send({ type: 'profile-written' });
      }
    })();
  });
  // The parent died or was interrupted: do not leave a server (and its database) running.
  process.on('disconnect', () => void stop());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop());
  started.then(
    (app) => send({ type: 'ready', url: app.url }),
    (e: Error) => {
      send({ type: 'failed', message: e.stack ?? e.message });
      process.exitCode = 1;
      process.disconnect?.();
    },
  );
}

function ownMemory(): ServerMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  const m = process.memoryUsage();
  return {
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
    collected: !!gc,
  };
}

/** Parent side: one server under test in a child process. */
export class ServerProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static spawn(
    script: string,
    env: NodeJS.ProcessEnv = {},
    execArgv: string[] = [],
  ): Promise<ServerProcess> {
    const child = fork(script, [], {
      env: { ...process.env, NODE_ENV: 'production', ...env },
      execArgv: [...process.execArgv, ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    // Never leave a server behind, whatever happens to the benchmark: SIGTERM lets it stop
    // its database on the way out.
    const kill = () => child.kill('SIGTERM');
    process.once('exit', kill);
    child.once('exit', () => process.removeListener('exit', kill));
    return new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before ready`)));
      child.once('message', (m: ChildMessage) => {
        if (m.type === 'ready') resolve(new ServerProcess(child, m.url));
        else reject(new Error(`${script} failed to start: ${'message' in m ? m.message : m.type}`));
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts the peak-RSS window here; false when the kernel does not allow it. */
  resetPeakRss(): boolean {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }

  /** Peak resident set size since the last reset (or since start), in MiB. */
  peakRssMb(): number {
    return this.statusKb('VmHWM') / 1024;
  }

  rssMb(): number {
    return this.statusKb('VmRSS') / 1024;
  }

  /** CPU seconds used so far by the server process alone, and by its descendants (the database). */
  cpuSeconds(): { server: number; descendants: number } {
    const all = processTable();
    const descendants: number[] = [];
    for (let frontier = [this.pid]; frontier.length;) {
      frontier = all.filter((p) => frontier.includes(p.ppid)).map((p) => p.pid);
      descendants.push(...frontier);
    }
    const cpu = (pid: number) => all.find((p) => p.pid === pid)?.cpuSeconds ?? 0;
    return {
      server: cpu(this.pid),
      descendants: descendants.reduce((sum, pid) => sum + cpu(pid), 0),
    };
  }

  async startProfile(): Promise<void> {
    await this.request({ type: 'profile-start' }, 'profile-started');
  }

  async stopProfile(file: string): Promise<void> {
    await this.request({ type: 'profile-stop', file }, 'profile-written');
  }

  /** The server's own view of its memory (after a full GC if it was started with --expose-gc). */
  memory(): Promise<ServerMemory> {
    return new Promise((resolve) => {
      const listen = (m: ChildMessage) => {
        if (m.type !== 'memory') return;
        this.child.removeListener('message', listen);
        resolve(m.usage);
      };
      this.child.on('message', listen);
      this.child.send({ type: 'memory' } satisfies ParentMessage);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ type: 'stop' } satisfies ParentMessage);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  private request(message: ParentMessage, answer: ChildMessage['type']): Promise<void> {
    return new Promise((resolve) => {
      const listen = (m: ChildMessage) => {
        if (m.type !== answer) return;
        this.child.removeListener('message', listen);
        resolve();
      };
      this.child.on('message', listen);
      this.child.send(message);
    });
  }

  private statusKb(field: string): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${this.pid}/status has no ${field}`);
    return Number(match[1]);
  }
}

const CLOCK_TICKS = 100;

interface ProcessEntry {
  pid: number;
  ppid: number;
  cpuSeconds: number;
}

/** Every process with its parent and CPU time (user + system), from /proc. */
function processTable(): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name, which may itself hold spaces and parentheses.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({
        pid: Number(name),
        ppid: Number(f[1]),
        cpuSeconds: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS,
      });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** CPU seconds the whole machine has spent busy (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}
