// The newest Observation per code for one patient (a vitals panel): one query whose lateral
// join picks, per requested code's digests, the newest permitted rows by clinical date. A code
// is matched as FHIR's combo-code is, on the main code or a component's (Synthea and most EHRs
// record systolic and diastolic pressure as components of a panel). An Observation that holds
// no result (entered in error, cancelled, registered but not yet resulted) is passed over for
// the next newest. Consent first, as for `records`: no grant for the patient is
// CONSENT_REQUIRED; grants that do not cover Observations answer nothing.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from '../../auth';
import { BadUserInputError } from '../../common/errors';
import { LedgerAnchors } from '../ledger-anchors';
import { anchorQuestion, readsAsOwner, recordModel, RecordAccess, served } from '../record-access';
import { OpenRow, RecordOpener } from '../record-opener';
import { CURRENT_COLUMNS, VersionRow, versionEntity } from '../record-rows';
import { HealthRecordModel } from '../record.model';
import { componentTerm, hasComboTerm, tokenTerm } from './clinical-facts';
import { RecordIndex } from './record-index';

/** A panel, not a dump: more codes than this is a mistake or a scrape. */
export const MAX_CODES = 50;

/** Statuses of an Observation without a result to show: the next newest is taken instead. */
const NO_RESULT = new Set(['entered-in-error', 'cancelled', 'registered']);

/** Rows read per code at first; a code whose newest were all passed over reads twice as many. */
const FIRST_TAKE = 2;

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
    const digests = terms.length
      ? await this.index.digestsFor(patientId, [...terms, ...terms.map(componentTerm)])
      : null;
    if (!digests) {
      await this.access.logPermitted(actor, decision, patientId, []);
      return { items: [], withheld: [] };
    }
    const permittedSql = (params: unknown[]) => this.access.filterSql(decision, 'r', params);
    /** Per code: the rows looked at so far, and what it settled on (a row, or none left). */
    const looked = terms.map(() => 0);
    const settled: (OpenRow | 'withheld' | 'none' | undefined)[] = terms.map(() => undefined);
    const withheld = new Set<string>();
    for (let take = FIRST_TAKE; settled.includes(undefined); take *= 2) {
      const open = terms.flatMap((_, i) => (settled[i] === undefined ? [i] : []));
      const params: unknown[] = [
        patientId,
        open.map((i) => digests[i]),
        open.map((i) => digests[terms.length + i]),
        open.map((i) => looked[i]),
        take,
      ];
      const where = [
        'r.patient_id = $1',
        `r.resource_type = 'Observation'`,
        'r.code_digests && ARRAY[d.main, d.component]',
      ];
      const permitted = permittedSql(params);
      if (permitted) where.push(permitted);
      const found = await this.db.query<(VersionRow & { ord: string })[]>(
        `SELECT d.ord, ${CURRENT_COLUMNS}
         FROM unnest($2::bytea[], $3::bytea[], $4::int[])
              WITH ORDINALITY AS d(main, component, skip, ord)
         CROSS JOIN LATERAL (
           SELECT * FROM records r WHERE ${where.join(' AND ')}
           ORDER BY r.effective_at DESC, r.created_at DESC, r.id DESC OFFSET d.skip LIMIT $5
         ) r
         ORDER BY d.ord, r.effective_at DESC, r.created_at DESC, r.id DESC`,
        params,
      );
      const byCode = new Map<number, VersionRow[]>(open.map((i) => [i, []]));
      for (const f of found) byCode.get(open[Number(f.ord) - 1])!.push(f);
      // Opened code by code, newest first, only as far as the first with a result.
      await Promise.all(
        [...byCode].map(async ([i, candidates]) => {
          looked[i] += candidates.length;
          for (const candidate of candidates) {
            const row = versionEntity(candidate);
            if (!this.access.admits(decision, row)) continue;
            const opened = await this.opener.open(row);
            if (!opened) {
              // Withheld, not skipped: an older value must not stand in for an unreadable newer one.
              withheld.add(row.id);
              settled[i] = 'withheld';
              return;
            }
            // The index only finds: each row must carry the code it was found by.
            if (!hasComboTerm(opened.resource, terms[i])) continue;
            if (NO_RESULT.has(opened.resource.status as string)) continue;
            settled[i] = opened;
            return;
          }
          if (candidates.length < take) settled[i] = 'none';
        }),
      );
    }
    // The same record may be the newest for two codes (a panel's systolic and diastolic): once.
    const seen = new Set<string>();
    const readable = settled.filter(
      (s): s is OpenRow =>
        typeof s === 'object' && !seen.has(s.row.id) && Boolean(seen.add(s.row.id)),
    );
    const anchors = await this.anchors.lookup(readable.map(anchorQuestion));
    const owner = readsAsOwner(decision);
    // As in `records`: a grantee is never served a record rolled back, nor told of one
    // withheld; an older value does not stand in for it either.
    const items = served(decision, readable, anchors);
    await this.access.logPermitted(
      actor,
      decision,
      patientId,
      items.map(({ o }) => o.row),
    );
    return {
      items: items.map(({ o, anchor }) => recordModel(o, anchor)),
      withheld: owner ? [...withheld] : [],
    };
  }
}
