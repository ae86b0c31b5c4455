// Start-up against an external PostgreSQL (DATABASE_URL): one that is not accepting connections
// yet (starting, or started after the API by a supervisor) is waited for, a line per try; any
// other failure (a wrong password, no such database or host) stops start-up at once with one
// line naming DATABASE_URL, rather than TypeORM's nine retries with a stack trace each.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { databaseIdentity } from '../ledger/embedded/head-file';
import { isDatabaseUnavailable } from './availability';

export interface WaitOptions {
  attempts?: number;
  delayMs?: number;
  onNotice?: (line: string) => void;
}

export async function waitForDatabase(url: string, options: WaitOptions = {}): Promise<void> {
  const { attempts = 15, delayMs = 2000, onNotice } = options;
  const where = databaseIdentity(url);
  for (let attempt = 1; ; attempt++) {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    // A connection dropped later is the pool's business, not this probe's.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (e) {
      await client.end().catch(() => undefined);
      const reason = (e as Error).message || (e as { code?: string }).code || 'unknown error';
      if (!isDatabaseUnavailable(e) || attempt >= attempts) {
        throw new Error(`cannot connect to DATABASE_URL (${where}): ${reason}`);
      }
      onNotice?.(
        `PostgreSQL at ${where} is not accepting connections (${reason}); trying again in ` +
          `${delayMs / 1000} s (${attempt} of ${attempts - 1})`,
      );
      await sleep(delayMs);
    }
  }
}
