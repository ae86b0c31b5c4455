// Which block last wrote each world-state key, as the verified chain says: what lets the
// embedded ledger tell a current world-state row from a stale one. A row's seal proves that
// this API wrote it once, not that it is the latest write of its key: someone who can write
// the database could put back a row saved before a revocation, and its seal would still
// hold. The world state keeps one row per key and block (a block's last write of a key), so
// the block number alone names the version a row must be.
import { Block } from './block';

export class StateVersions {
  /** Key → number of the block that last wrote it; deleted keys are absent. */
  private readonly writers = new Map<string, number>();
  private headNumber = -1;
  private headHashValue: string | null = null;

  /** The last block applied (-1 before any). */
  get head(): number {
    return this.headNumber;
  }

  /** The hash of the last block applied (null before any). */
  get headHash(): string | null {
    return this.headHashValue;
  }

  get size(): number {
    return this.writers.size;
  }

  /**
   * Takes in a verified block if it is the one right after the head; one already taken in, or
   * beyond a gap (blocks of another process not yet read), is left: a catch-up reads them.
   */
  apply(block: Block, hash: string): void {
    if (block.number !== this.headNumber + 1) return;
    for (const tx of block.txs) {
      for (const w of tx.writes) {
        if (w.value === null) this.writers.delete(w.key);
        else this.writers.set(w.key, block.number);
      }
    }
    this.headNumber = block.number;
    this.headHashValue = hash;
  }

  /** The block whose write of `key` stands, or undefined when no block left it written. */
  writer(key: string): number | undefined {
    return this.writers.get(key);
  }

  keys(): IterableIterator<[string, number]> {
    return this.writers.entries();
  }
}

/** The block's last write of `key`: its value (base64, null for a delete) and transaction. */
export function lastWrite(
  block: Block,
  key: string,
): { value: string | null; txId: string } | undefined {
  let found: { value: string | null; txId: string } | undefined;
  for (const tx of block.txs) {
    for (const w of tx.writes) if (w.key === key) found = { value: w.value, txId: tx.txId };
  }
  return found;
}
