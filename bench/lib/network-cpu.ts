// CPU time the Fabric network's processes (and their children) have used, from /proc: on a
// machine that others share, CPU seconds per transaction say more than transactions per second
// (2 cores / CPU-seconds per transaction bounds what the machine could do on its own).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Linux's USER_HZ; clock ticks per second in /proc/<pid>/stat. */
const TICKS_PER_SECOND = 100;

function stat(pid: string): { ppid: string; ticks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: f[1], ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined; // the process ended meanwhile
  }
}

/** CPU seconds so far of the processes listed in the network's pids file and their descendants. */
export function networkCpuSeconds(networkDir: string): number {
  const roots = new Set(
    readFileSync(join(networkDir, 'pids'), 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[0])
      .filter(Boolean),
  );
  const all = new Map<string, { ppid: string; ticks: number }>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    const s = stat(pid);
    if (s) all.set(pid, s);
  }
  let ticks = 0;
  for (const [pid, s] of all) {
    for (let p: string | undefined = pid; p && p !== '0' && p !== '1'; p = all.get(p)?.ppid) {
      if (roots.has(p)) {
        ticks += s.ticks;
        break;
      }
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** This process's CPU seconds so far (the load generator, and the APIs it runs in-process). */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}
