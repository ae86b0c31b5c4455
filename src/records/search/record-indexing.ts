// The start-up half of the search migrations (1764530000000, 1764590000000): rows written
// before search existed have no index (index_version 0), and rows indexed by older rules than
// INDEX_VERSION's whose entries those rules got wrong were left at their version. Their codes
// and dates are inside the ciphertext, and migrations hold no keys, hence here: each row is
// opened, indexed under its own data key, and updated only if unchanged since it was read.
// Idempotent and resumable; a row that does not open is left alone (reads withhold it anyway).
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { DataKeyRing } from '../crypto';
import { RecordOpener } from '../record-opener';
import { CURRENT_COLUMNS, VersionRow, versionEntity } from '../record-rows';
import { INDEX_VERSION, RecordIndex } from './record-index';

const BATCH = 200;

@Injectable()
export class RecordIndexing {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly keys: DataKeyRing,
    private readonly opener: RecordOpener,
    private readonly index: RecordIndex,
  ) {}

  /**
   * Indexes every row not indexed by the current rules that opens; answers how many were
   * indexed and left alone.
   */
  async indexAll(): Promise<{ indexed: number; leftAlone: number }> {
    const outcome = { indexed: 0, leftAlone: 0 };
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      // The version as a literal, so that the planner takes the partial index records_unindexed.
      const rows = await this.db.query<(VersionRow & { index_version: number })[]>(
        `SELECT ${CURRENT_COLUMNS}, r.index_version FROM records r
         WHERE r.index_version < ${INDEX_VERSION} AND r.id > $1 ORDER BY r.id LIMIT $2`,
        [after, BATCH],
      );
      if (!rows.length) return outcome;
      for (const raw of rows) {
        const row = versionEntity(raw);
        const open = await this.opener.open(row);
        if (!open) {
          outcome.leftAlone++;
          continue;
        }
        const dek = { id: row.keyId, key: await this.keys.key(row.keyId, row.patientId) };
        const entry = this.index.entryFor(dek, open.resource, row.createdAt);
        const [, updated] = (await this.db.query(
          `UPDATE records SET effective_at = $4, code_digests = $5, index_version = $6
           WHERE id = $1 AND version = $2 AND auth_tag = $3 AND index_version = $7`,
          [
            row.id,
            row.version,
            row.authTag,
            entry.effectiveAt,
            entry.codeDigests,
            entry.indexVersion,
            raw.index_version,
          ],
        )) as [unknown, number];
        if (updated === 1) outcome.indexed++;
        else outcome.leftAlone++;
      }
      after = rows[rows.length - 1].id;
    }
  }
}
