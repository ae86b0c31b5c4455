// The start-up half of the label-binding migration (migrations/1764410400000): records sealed
// in format 1 are re-sealed under format 2's associated data, bound to the labels they carry.
// Migrations hold no KEK, hence here. Idempotent and resumable: only format-1 rows are read,
// in batches, and each is rewritten by one conditional UPDATE (its own transaction). Their
// anchors stay format 1 (hash_version 1): a ledger anchor is never rewritten. A row that does
// not open, or whose labels its own content contradicts, is left as it is and reported; it
// never stops start-up, and reads withhold it.
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { describe } from '../common/graphql-errors';
import { IntegrityMonitor } from '../observability';
import { DataKeyRing, openRecordV1, RecordLabels, resealRecord } from './crypto';
import { contradictedLabel } from './fhir';
import { RecordIndexing } from './search/record-indexing';

const BATCH = 200;

interface UnboundRow {
  id: string;
  patient_id: string;
  version: number;
  resource_type: string;
  category: string | null;
  sensitivity: RecordLabels['sensitivity'];
  key_id: string;
  iv: Buffer;
  auth_tag: Buffer;
  ciphertext: Buffer;
}

export interface ResealOutcome {
  resealed: number;
  leftAlone: number;
}

@Injectable()
export class RecordResealing implements OnApplicationBootstrap {
  private readonly logger = new Logger(RecordResealing.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly keys: DataKeyRing,
    private readonly integrity: IntegrityMonitor,
    private readonly indexing: RecordIndexing,
  ) {}

  /**
   * Awaited, so the API serves only once every row that can be re-sealed has been, and every
   * row that opens has its search index.
   */
  async onApplicationBootstrap(): Promise<void> {
    try {
      const { resealed, leftAlone } = await this.resealAll();
      if (resealed || leftAlone) {
        this.logger.log({ resealed, leftAlone }, 'format-1 records re-sealed with their labels');
      }
    } catch (e) {
      this.logger.error(describe(e), 'record re-sealing stopped; it resumes at the next start');
    }
    // Then the search index of rows written before search existed (they must open first).
    try {
      const { indexed, leftAlone } = await this.indexing.indexAll();
      if (indexed || leftAlone) {
        this.logger.log({ indexed, leftAlone }, 'search index filled in for older records');
      }
    } catch (e) {
      this.logger.error(describe(e), 'record indexing stopped; it resumes at the next start');
    }
  }

  async resealAll(): Promise<ResealOutcome> {
    const outcome: ResealOutcome = { resealed: 0, leftAlone: 0 };
    // Keyset over ids, so rows left alone are not read again in this pass.
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const rows = await this.db.query<UnboundRow[]>(
        `SELECT id, patient_id, version, resource_type, category, sensitivity, key_id, iv,
           auth_tag, ciphertext
         FROM records WHERE binding_version = 1 AND id > $1 ORDER BY id LIMIT $2`,
        [after, BATCH],
      );
      if (!rows.length) return outcome;
      for (const row of rows) {
        if (await this.reseal(row)) outcome.resealed++;
        else outcome.leftAlone++;
      }
      after = rows[rows.length - 1].id;
    }
  }

  private async reseal(r: UnboundRow): Promise<boolean> {
    const labels: RecordLabels = {
      recordId: r.id,
      patientId: r.patient_id,
      version: r.version,
      resourceType: r.resource_type,
      category: r.category,
      sensitivity: r.sensitivity,
    };
    try {
      const dek = await this.keys.key(r.key_id, r.patient_id);
      const opened = openRecordV1(dek, labels, {
        iv: r.iv,
        tag: r.auth_tag,
        ciphertext: r.ciphertext,
      });
      // Format 1 never bound the labels: bind none that the record's own content refutes.
      const contradicted = contradictedLabel(opened.resource as never, labels);
      if (contradicted) {
        this.integrity.report(
          'record',
          'format-1 record has a label its content contradicts; not re-sealed',
          {
            recordId: r.id,
            label: contradicted,
          },
        );
        return false;
      }
      const sealed = resealRecord(dek, labels, opened);
      // Only the row as it was read and checked: labels and ciphertext unchanged since.
      const [, updated] = (await this.db.query(
        `UPDATE records SET iv = $2, auth_tag = $3, ciphertext = $4, binding_version = 2
         WHERE id = $1 AND binding_version = 1 AND auth_tag = $5 AND resource_type = $6
           AND category IS NOT DISTINCT FROM $7 AND sensitivity = $8`,
        [
          r.id,
          sealed.iv,
          sealed.tag,
          sealed.ciphertext,
          r.auth_tag,
          r.resource_type,
          r.category,
          r.sensitivity,
        ],
      )) as [unknown, number];
      return updated === 1;
    } catch (e) {
      this.integrity.report('record', 'format-1 record failed to open; not re-sealed', {
        recordId: r.id,
        errorType: (e as Error).name,
      });
      return false;
    }
  }
}
