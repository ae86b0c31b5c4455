// The start-up half of the search migrations (1764530000000, 1764590000000): rows written
// before search existed have no index (index_version 0), and rows indexed by older rules than
// INDEX_VERSION's whose entries those rules got wrong were left at their version. Their codes
// and dates are inside the ciphertext, and migrations hold no keys, hence here: each row is
// opened, indexed under its own data key, and updated only if unchanged since it was read.
// Idempotent and resumable; a row that does not open is left alone (reads withhold it anyway).
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { arrayLiteral } from '../../database/array-literal';
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
      // Opened together, then written in one statement: a start-up that re-indexes every row
      // (a new INDEX_VERSION) pays a round trip per batch, not per row.
      const entries = await Promise.all(
        rows.map(async (raw) => {
          const row = versionEntity(raw);
          const open = await this.opener.open(row);
          if (!open) return null;
          const dek = { id: row.keyId, key: await this.keys.key(row.keyId, row.patientId) };
          return { raw, row, entry: this.index.entryFor(dek, open.resource, row.createdAt) };
        }),
      );
      const ready = entries.filter((e) => e !== null);
      outcome.leftAlone += rows.length - ready.length;
      if (ready.length) {
        // Each row only if unchanged since it was read (version, tag and index version).
        const [, updated] = (await this.db.query(
          `UPDATE records r SET effective_at = u.effective_at, code_digests = u.code_digests,
             index_version = $7
           FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::int[]) AS version,
                        unnest($3::bytea[]) AS auth_tag, unnest($4::timestamptz[]) AS effective_at,
                        unnest($5::text[])::bytea[] AS code_digests,
                        unnest($6::int[]) AS index_version) u
           WHERE r.id = u.id AND r.version = u.version AND r.auth_tag = u.auth_tag
             AND r.index_version = u.index_version`,
          [
            ready.map((e) => e.row.id),
            ready.map((e) => e.row.version),
            ready.map((e) => e.row.authTag),
            ready.map((e) => e.entry.effectiveAt),
            ready.map((e) =>
              arrayLiteral(e.entry.codeDigests.map((d) => `\\x${d.toString('hex')}`)),
            ),
            ready.map((e) => e.raw.index_version),
            INDEX_VERSION,
          ],
        )) as [unknown, number];
        outcome.indexed += updated;
        outcome.leftAlone += ready.length - updated;
      }
      after = rows[rows.length - 1].id;
    }
  }
}
