// Seals of the embedded ledger: an HMAC (KEK-derived key, never in the database) over each
// block's number and hash, and over each world-state row. The hash chain alone shows that a
// block was changed; it cannot show that a whole new block was appended by someone who can
// write the database, since anyone can compute SHA-256. A seal can only be made by this
// organisation's API (as a Fabric orderer's signature can only be made by the orderer).
import type { RowAuthenticator } from '../../records/crypto';

export class LedgerSeal {
  constructor(private readonly rows: RowAuthenticator) {}

  block(number: number, hash: string): Buffer {
    return this.rows.mac('ledger-block/v1', { number, hash });
  }

  blockSealed(number: number, hash: string, mac: Buffer | null): boolean {
    return this.rows.verify('ledger-block/v1', { number, hash }, mac);
  }

  state(key: Buffer, value: Buffer, blockNumber: number, txId: string): Buffer {
    return this.rows.macParts('ledger-state/v1', [key, value, String(blockNumber), txId]);
  }

  stateSealed(
    key: Buffer,
    value: Buffer,
    blockNumber: number,
    txId: string,
    mac: Buffer | null,
  ): boolean {
    return this.rows.verifyParts('ledger-state/v1', [key, value, String(blockNumber), txId], mac);
  }
}
