// Authenticates rows that the database keeps as copies of the ledger (the consent projection,
// declared emergencies): an HMAC over the row's canonical fields under a key derived from the
// KEK, which never reaches the database. Whoever can write the database but not read the KEK
// can delete or break such rows (availability), never forge or alter one that is believed.
import canonicalize from 'canonicalize';
import { createHmac, hkdfSync, KeyObject, timingSafeEqual } from 'node:crypto';

/** What a MAC is over; each kind has its own domain, so a MAC of one never fits another. */
export type AuthenticatedRowKind =
  | 'consent-grant/v1'
  | 'emergency/v1'
  | 'identity-link/v1'
  | 'patient-settings/v1'
  | 'signed-consent/v1'
  | 'ledger-block/v1'
  | 'ledger-state/v1';

const MAC_BYTES = 32;

export class RowAuthenticator {
  private readonly key: Buffer;

  constructor(kek: KeyObject) {
    this.key = Buffer.from(
      hkdfSync('sha256', kek.export(), Buffer.alloc(0), 'custodia/row-mac/v1', MAC_BYTES),
    );
  }

  mac(kind: AuthenticatedRowKind, fields: Record<string, unknown>): Buffer {
    return createHmac('sha256', this.key)
      .update(`custodia/${kind}\n`)
      .update(canonicalize(fields)!)
      .digest();
  }

  /**
   * The MAC over fields given in a fixed order, each framed by its length: for hot paths (the
   * embedded ledger's state rows), where building and canonicalising an object costs more
   * than the HMAC itself.
   */
  macParts(kind: AuthenticatedRowKind, parts: readonly (Buffer | string)[]): Buffer {
    const hmac = createHmac('sha256', this.key).update(`custodia/${kind}\n`);
    const length = Buffer.alloc(4);
    for (const part of parts) {
      const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
      length.writeUInt32BE(bytes.length);
      hmac.update(length).update(bytes);
    }
    return hmac.digest();
  }

  verifyParts(
    kind: AuthenticatedRowKind,
    parts: readonly (Buffer | string)[],
    mac: Buffer | null,
  ): boolean {
    if (!mac || mac.length !== MAC_BYTES) return false;
    return timingSafeEqual(this.macParts(kind, parts), mac);
  }

  /** Constant-time; false for a missing or malformed MAC. */
  verify(kind: AuthenticatedRowKind, fields: Record<string, unknown>, mac: Buffer | null): boolean {
    if (!mac || mac.length !== MAC_BYTES) return false;
    return timingSafeEqual(this.mac(kind, fields), mac);
  }
}
