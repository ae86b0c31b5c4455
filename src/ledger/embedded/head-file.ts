// The embedded ledger's head as this data directory last saw it committed, kept outside the
// database: the chain and its seals live in PostgreSQL, so someone who can write it could
// delete the newest blocks and put back the world state from before them, and every seal
// would still hold. The file (sealed like a block, under the KEK's key) says how far the
// chain reached; a chain that ends before it, or holds another block there, was rolled back.
// It may lag the chain (it is written after each commit, and a crash can lose the last
// write), never lead it.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LedgerSeal } from './seal';

export interface LedgerHead {
  number: number;
  hash: string;
}

interface HeadFileBody extends LedgerHead {
  /** The database this head belongs to (no credentials), so a data directory moved to another is not confused. */
  database: string;
  mac: string;
}

export class HeadFileInvalid extends Error {
  constructor(path: string) {
    super(`the ledger head recorded in ${path} is unreadable or not sealed by this organisation`);
    this.name = 'HeadFileInvalid';
  }
}

export class LedgerHeadFile {
  private written = -1;
  private next: LedgerHead | null = null;
  private writing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly database: string,
    private readonly seal: LedgerSeal,
  ) {}

  /**
   * The head recorded for this database, or null when there is none (a new data directory,
   * or one that recorded another database). Throws HeadFileInvalid when it fails its seal.
   */
  async read(): Promise<LedgerHead | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    let body: HeadFileBody;
    try {
      body = JSON.parse(text) as HeadFileBody;
    } catch {
      throw new HeadFileInvalid(this.path);
    }
    if (body.database !== this.database) return null;
    if (
      !Number.isSafeInteger(body.number) ||
      typeof body.hash !== 'string' ||
      typeof body.mac !== 'string' ||
      !this.seal.blockSealed(body.number, body.hash, Buffer.from(body.mac, 'base64'))
    ) {
      throw new HeadFileInvalid(this.path);
    }
    return { number: body.number, hash: body.hash };
  }

  /** Records a committed head, after the write under way if any; never moves backwards. */
  record(head: LedgerHead): void {
    if (head.number <= Math.max(this.written, this.next?.number ?? -1)) return;
    this.next = head;
    this.writing ??= this.drain();
  }

  /** Resolves once every head recorded so far is written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.next) {
        const head = this.next;
        this.next = null;
        await this.write(head);
        this.written = head.number;
      }
    } catch {
      // A head not written leaves the file behind the chain, which it may be: the next commit
      // writes it again.
    } finally {
      this.writing = null;
    }
  }

  private async write(head: LedgerHead): Promise<void> {
    const body: HeadFileBody = {
      database: this.database,
      number: head.number,
      hash: head.hash,
      mac: this.seal.block(head.number, head.hash).toString('base64'),
    };
    // Written aside, then renamed over the file: a reader never sees half a file.
    const aside = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(aside, `${JSON.stringify(body)}\n`, { mode: 0o600 });
      await rename(aside, this.path);
    } catch (e) {
      await rm(aside, { force: true });
      throw e;
    }
  }
}

/** Names the database of a connection string without its credentials; the embedded one is "embedded". */
export function databaseIdentity(databaseUrl: string | undefined): string {
  if (!databaseUrl) return 'embedded';
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'external';
  }
}

/** The head file of the embedded ledger in `dataDir`, for the database the API is given. */
export function embeddedHeadFile(
  config: { dataDir: string; databaseUrl?: string },
  seal: LedgerSeal,
): LedgerHeadFile {
  return new LedgerHeadFile(
    join(config.dataDir, 'ledger-head.json'),
    databaseIdentity(config.databaseUrl),
    seal,
  );
}
