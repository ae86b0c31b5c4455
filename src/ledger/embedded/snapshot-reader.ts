// Reads for a block whose transactions run at once. While a block is cut the writer lock is
// held, so the committed state cannot change: each key is read at most once per block, and
// the keys asked for in the same turn of the event loop are read in one query. Each
// transaction's reads are recorded, so that one which read what an earlier transaction of the
// block wrote can be found and run again over those writes.
import { compareKeys, StateReader } from './chaincode-host';

type Load = (keys: string[]) => Promise<Map<string, Buffer | Error>>;

interface Waiter {
  resolve(value: Buffer | undefined): void;
  reject(error: unknown): void;
}

export class SnapshotReader implements StateReader {
  private readonly values = new Map<string, Promise<Buffer | undefined>>();
  private waiting = new Map<string, Waiter>();

  /**
   * @param load reads committed keys in one query: a value, or the error reading it gave
   *   (a row failing its seal); a key absent from the map does not exist.
   * @param committed the committed state, for range scans (rare; read as they come).
   */
  constructor(
    private readonly load: Load,
    private readonly committed: StateReader,
  ) {}

  get(key: string): Promise<Buffer | undefined> {
    let value = this.values.get(key);
    if (!value) {
      value = new Promise<Buffer | undefined>((resolve, reject) => {
        if (!this.waiting.size) setImmediate(() => void this.flush());
        this.waiting.set(key, { resolve, reject });
      });
      this.values.set(key, value);
    }
    return value;
  }

  range(start: string, end: string, limit?: number): Promise<{ key: string; value: Buffer }[]> {
    return this.committed.range(start, end, limit);
  }

  private async flush(): Promise<void> {
    const waiting = this.waiting;
    this.waiting = new Map();
    let found: Map<string, Buffer | Error>;
    try {
      found = await this.load([...waiting.keys()]);
    } catch (e) {
      for (const w of waiting.values()) w.reject(e);
      return;
    }
    for (const [key, w] of waiting) {
      const value = found.get(key);
      if (value instanceof Error) w.reject(value);
      else w.resolve(value);
    }
  }
}

/** What one transaction read: keys, and the bounds of its range scans. */
export class ReadSet {
  private readonly keys = new Set<string>();
  private readonly ranges: [start: string, end: string][] = [];

  /** `reader`, noting here every read made through it. */
  over(reader: StateReader): StateReader {
    return {
      get: (key) => {
        this.keys.add(key);
        return reader.get(key);
      },
      range: (start, end, limit) => {
        this.ranges.push([start, end]);
        return reader.range(start, end, limit);
      },
    };
  }

  /** Whether `writes` change a key read here, or add or remove one in a range scanned here. */
  touches(writes: ReadonlyMap<string, unknown>): boolean {
    if (!writes.size) return false;
    for (const key of this.keys) if (writes.has(key)) return true;
    if (!this.ranges.length) return false;
    for (const key of writes.keys()) {
      for (const [start, end] of this.ranges) {
        if (compareKeys(key, start) >= 0 && compareKeys(key, end) < 0) return true;
      }
    }
    return false;
  }
}
