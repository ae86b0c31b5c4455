// The newest Observation per code for one patient (a vitals panel): one query whose lateral
// join picks, per requested code's digest, the newest permitted row by clinical date. Consent
// first, as for `records`: no grant for the patient is CONSENT_REQUIRED; grants that do not
// cover Observations answer nothing.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from '../../auth';
import { BadUserInputError } from '../../common/errors';
import { LedgerAnchors } from '../ledger-anchors';
import { anchorQuestion, recordModel, RecordAccess } from '../record-access';
import { OpenRow, RecordOpener } from '../record-opener';
import { CURRENT_COLUMNS, VersionRow, versionEntity } from '../record-rows';
import { HealthRecordModel } from '../record.model';
import { hasTerm, tokenTerm } from './clinical-facts';
import { RecordIndex } from './record-index';

/** A panel, not a dump: more codes than this is a mistake or a scrape. */
export const MAX_CODES = 50;

export interface LatestObservations {
  items: HealthRecordModel[];
  withheld: string[];
}

@Injectable()
export class LatestObservationsQuery {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly access: RecordAccess,
    private readonly index: RecordIndex,
    private readonly opener: RecordOpener,
    private readonly anchors: LedgerAnchors,
  ) {}

  async latest(
    actor: Actor,
    patientId: string,
    codes: readonly string[],
  ): Promise<LatestObservations> {
    if (codes.length > MAX_CODES) {
      throw new BadUserInputError(`codes may name at most ${MAX_CODES} codes`, 'codes');
    }
    const terms = codes.map((c, i) => tokenTerm(c, `codes[${i}]`));
    const decision = await this.access.decideRead(actor, patientId);
    const digests = terms.length ? await this.index.digestsFor(patientId, terms) : null;
    if (!digests) {
      await this.access.logPermitted(actor, decision, patientId, []);
      return { items: [], withheld: [] };
    }
    const params: unknown[] = [patientId, digests];
    const where = [
      'r.patient_id = $1',
      `r.resource_type = 'Observation'`,
      'r.code_digests @> ARRAY[d.digest]',
    ];
    const permitted = this.access.filterSql(decision, 'r', params);
    if (permitted) where.push(permitted);
    const found = await this.db.query<(VersionRow & { ord: string })[]>(
      `SELECT d.ord, ${CURRENT_COLUMNS}
       FROM unnest($2::bytea[]) WITH ORDINALITY AS d(digest, ord)
       CROSS JOIN LATERAL (
         SELECT * FROM records r WHERE ${where.join(' AND ')}
         ORDER BY r.effective_at DESC, r.created_at DESC, r.id DESC LIMIT 1
       ) r
       ORDER BY d.ord`,
      params,
    );
    // The same record may be the newest for two codes: it is returned once.
    const seen = new Set<string>();
    const rows = found
      .map((f) => ({ term: terms[Number(f.ord) - 1], row: versionEntity(f) }))
      .filter(
        ({ row }) => this.access.admits(decision, row) && !seen.has(row.id) && seen.add(row.id),
      );
    const opened = await Promise.all(rows.map(({ row }) => this.opener.open(row)));
    // The index only finds: each row must carry the code it was found by.
    const readable = opened.filter(
      (o, i): o is OpenRow => o !== null && hasTerm(o.resource, rows[i].term),
    );
    const anchors = await this.anchors.lookup(readable.map(anchorQuestion));
    await this.access.logPermitted(
      actor,
      decision,
      patientId,
      readable.map((o) => o.row),
    );
    return {
      items: readable.map((o, i) => recordModel(o, anchors[i])),
      withheld: rows.filter((_, i) => opened[i] === null).map(({ row }) => row.id),
    };
  }
}
