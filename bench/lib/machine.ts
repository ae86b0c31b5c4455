// What a results file records about the machine it was measured on.
import { cpus } from 'node:os';

export function machineInfo(): { cpus: number; cpuModel: string | undefined; node: string } {
  const cpu = cpus();
  return { cpus: cpu.length, cpuModel: cpu[0]?.model, node: process.version };
}
