// A closed loop of consent grants against any Ledger: c workers submitting back to back for
// a fixed time, with each commit's latency and block, for bench:ledger and bench:fabric.
import { parseArgs, ParseArgsConfig } from 'node:util';
import type { Ledger } from '../../src/ledger';
import type { BenchGrant } from './patient-signers';

export interface PhaseResult {
  concurrency: number;
  /** Grants carrying the patient's signature (verified by the chaincode), or not. */
  signed?: boolean;
  /** This process's CPU time (user + system) per committed grant: API and chaincode. */
  cpuMsPerTx?: number;
  txPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanBlockSize: number;
  total: number;
  blocks: number;
  failures: number;
  elapsedSeconds: number;
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export class GrantLoad {
  private next = 0;
  /** Grants committed by every run so far (warm-ups included). */
  committed = 0;
  /** Distinct per process, so runs against a ledger that persists never collide on ids. */
  private readonly prefix = `bench-${Date.now().toString(36)}`;

  constructor(
    private readonly ledger: Ledger,
    private readonly patients = 1000,
  ) {}

  private grant(n: number): BenchGrant {
    return {
      id: `${this.prefix}-${n}`,
      patientId: `bench-patient-${n % this.patients}`,
      grantee: { type: 'CLINICIAN', id: 'dr-1' },
      purpose: 'TREATMENT',
      actions: ['READ'],
    };
  }

  /** The synthetic patients' ids (grants cycle through them). */
  patientIds(): string[] {
    return Array.from({ length: this.patients }, (_, n) => `bench-patient-${n}`);
  }

  /**
   * `concurrency` workers submitting grants back to back until `seconds` have passed. With
   * `presigned`, each grant is the next of those JSON texts (signed beforehand, so signing
   * stays out of the measured window); the run stops early if they run out.
   */
  async run(
    concurrency: number,
    seconds: number,
    presigned?: (grant: BenchGrant) => string,
    presignCount = 0,
  ): Promise<PhaseResult> {
    const texts: string[] = [];
    if (presigned) {
      for (let i = 0; i < presignCount; i++) texts.push(presigned(this.grant(this.next + i)));
    }
    let used = 0;
    const cpu0 = process.cpuUsage();
    const latencies: number[] = [];
    const blocks = new Set<number>();
    let failures = 0;
    let firstError: unknown;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(seconds * 1e9));
    const worker = async () => {
      while (process.hrtime.bigint() < deadline) {
        if (presigned && used >= texts.length) break;
        const n = this.next++;
        const text = presigned ? texts[used++] : JSON.stringify(this.grant(n));
        const t0 = process.hrtime.bigint();
        try {
          const r = await this.ledger.submit('consent', 'GrantConsent', [text]);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          blocks.add(r.blockNumber);
          this.committed++;
        } catch (e) {
          failures++;
          firstError ??= e;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (presigned && used >= texts.length) {
      console.error(`  the ${texts.length} presigned grants ran out before the deadline`);
    }
    if (firstError) {
      console.error(`  ${failures} submits failed; first: ${(firstError as Error).message}`);
    }
    latencies.sort((a, b) => a - b);
    return {
      concurrency,
      signed: presigned !== undefined,
      cpuMsPerTx: round((cpu.user + cpu.system) / 1000 / Math.max(latencies.length, 1), 3),
      txPerSec: round(latencies.length / elapsedSeconds, 1),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      meanBlockSize: round(latencies.length / Math.max(blocks.size, 1)),
      total: latencies.length,
      blocks: blocks.size,
      failures,
      elapsedSeconds: round(elapsedSeconds, 3),
    };
  }
}

export interface PhaseSettings {
  durationSeconds: number;
  warmupSeconds: number;
  concurrencies: number[];
}

/**
 * --duration, --warmup and --concurrency (a comma-separated list), plus any `extra` options
 * of the calling benchmark, whose raw values come back as `values`.
 */
export function phaseSettings(extra: NonNullable<ParseArgsConfig['options']> = {}) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '1,16,64' },
      ...extra,
    },
  });
  const concurrencies = String(values.concurrency)
    .split(',')
    .map((c) => positive('concurrency', c));
  if (concurrencies.some((c) => !Number.isInteger(c))) {
    throw new Error('--concurrency must be a comma-separated list of positive integers');
  }
  const phases: PhaseSettings = {
    durationSeconds: positive('duration', String(values.duration)),
    warmupSeconds: positive('warmup', String(values.warmup)),
    concurrencies,
  };
  return { phases, values: values as Record<string, string | boolean | undefined> };
}

export function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}
