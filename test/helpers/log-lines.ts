// The server's log lines, kept in memory (a pino destination) so that a test can assert what
// was logged and at which level. A request's own line is written when its response finishes,
// which may be just after the client has the response: wait for it, never sleep.
import { Collector } from './collector';

export interface LogEntry {
  level: number;
  msg?: string;
  req?: { id?: unknown; method?: string; path?: string };
  res?: { statusCode?: number };
  [key: string]: unknown;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export class LogLines {
  private readonly lines = new Collector<LogEntry>();

  /** pino calls this with one or more newline-terminated JSON lines. */
  write(chunk: string): void {
    for (const line of chunk.split('\n')) if (line) this.lines.push(JSON.parse(line) as LogEntry);
  }

  get all(): readonly LogEntry[] {
    return this.lines.items;
  }

  /** Resolves once `count` more requests than at `mark` have been logged as finished. */
  async requestsFinished(mark: number, count = 1): Promise<LogEntry[]> {
    const finished = (items: LogEntry[]) => items.slice(mark).filter((e) => e.res !== undefined);
    await this.lines.until((items) => finished(items).length >= count);
    return this.all.slice(mark);
  }
}
