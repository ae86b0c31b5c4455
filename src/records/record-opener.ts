// Opens record rows for reading: under the labels each row carries (format 2), so a row
// relabelled in the database does not open, and with its content hash recomputed in the
// format it was anchored with. A row that does not open is reported, never thrown: callers
// withhold it and serve the rest.
import { Injectable } from '@nestjs/common';
import { BoundedMap } from '../common/bounded-map';
import { isDatabaseUnavailable } from '../database/availability';
import { IntegrityMonitor } from '../observability';
import {
  contentHash,
  CURRENT_FORMAT,
  DataKeyRing,
  OpenedRecord,
  openRecord,
  openRecordV1,
  RecordLabels,
} from './crypto';
import { RecordEntity } from './record.entity';

const HASH_CACHE_LIMIT = 50_000;

/** A row that opened, with the hash recomputed from what it holds. */
export interface OpenRow {
  row: RecordEntity;
  resource: Record<string, unknown>;
  hash: string;
}

@Injectable()
export class RecordOpener {
  /**
   * By record version and format: the GCM tag it was opened under and the hash, as one
   * 48-character string (their bytes, latin1). A Buffer per entry would pin a whole 8 KiB
   * pool slab (small Buffer copies are slices of Node's pool) and cost three objects more,
   * so a full cache would hold far more than its entries.
   */
  private readonly hashes = new BoundedMap<string, string>(HASH_CACHE_LIMIT);

  constructor(
    private readonly keys: DataKeyRing,
    private readonly integrity: IntegrityMonitor,
  ) {}

  /**
   * Opens a row under the labels it carries and recomputes its content hash; null (reported,
   * never thrown) when it does not open: altered ciphertext, labels, binding or key, or a
   * row still in format 1, which start-up re-sealing would have converted.
   */
  async open(row: RecordEntity): Promise<OpenRow | null> {
    let opened: OpenedRecord;
    try {
      if (row.bindingVersion !== CURRENT_FORMAT) throw new TypeError('record not re-sealed');
      const dek = await this.keys.key(row.keyId, row.patientId);
      opened = openRecord(dek, labelsOf(row), {
        iv: row.iv,
        tag: row.authTag,
        ciphertext: row.ciphertext,
      });
    } catch (e) {
      // A database that cannot be reached is not the record's fault: the call fails (to be
      // retried), and no record is reported as tampered with.
      if (isDatabaseUnavailable(e)) throw e;
      this.integrity.report('record', 'record failed to open and was withheld', {
        recordId: row.id,
        errorType: (e as Error).name,
      });
      return null;
    }
    return { row, resource: opened.resource, hash: this.hashOf(row, opened) };
  }

  /**
   * The commitment to anchor for a row: its content hash recomputed from what it decrypts to,
   * never the stored column. A row still in format 1 (not yet re-sealed) is opened under the
   * binding it was sealed with: its format-1 hash commits to the resource alone, which that
   * proves. Null (reported, never thrown) when the row does not open.
   */
  async commitmentOf(row: RecordEntity): Promise<string | null> {
    if (row.bindingVersion === CURRENT_FORMAT) return (await this.open(row))?.hash ?? null;
    try {
      if (row.hashVersion !== 1) throw new TypeError('format-1 record with a later hash format');
      const dek = await this.keys.key(row.keyId, row.patientId);
      const opened = openRecordV1(dek, labelsOf(row), {
        iv: row.iv,
        tag: row.authTag,
        ciphertext: row.ciphertext,
      });
      return contentHash(1, opened.salt, labelsOf(row), opened.resource);
    } catch (e) {
      if (isDatabaseUnavailable(e)) throw e;
      this.integrity.report('record', 'format-1 record failed to open and was not anchored', {
        recordId: row.id,
        errorType: (e as Error).name,
      });
      return null;
    }
  }

  /**
   * The content hash of a decrypted record, in the format it was anchored with. Remembered
   * per record version, format and GCM tag: a ciphertext that opens under the same tag (which
   * authenticates the labels too) is the same plaintext, so the hash (never the plaintext,
   * which is not cached) can be reused.
   */
  private hashOf(row: RecordEntity, opened: OpenedRecord): string {
    const key = `${row.id}:${row.version}:${row.hashVersion}`;
    const tag = row.authTag.toString('latin1');
    const known = this.hashes.get(key);
    if (known !== undefined && known.startsWith(tag) && known.length === tag.length + 32) {
      return Buffer.from(known.slice(tag.length), 'latin1').toString('hex');
    }
    const hash = contentHash(row.hashVersion, opened.salt, labelsOf(row), opened.resource);
    this.hashes.set(key, tag + Buffer.from(hash, 'hex').toString('latin1'));
    return hash;
  }
}

function labelsOf(row: RecordEntity): RecordLabels {
  return {
    recordId: row.id,
    patientId: row.patientId,
    version: row.version,
    resourceType: row.resourceType,
    category: row.category,
    sensitivity: row.sensitivity,
  };
}
