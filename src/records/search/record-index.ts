// A record's search index entry, computed when it is written (and by RecordIndexing for rows
// written before search existed): its clinical date, and its code terms as keyed digests under
// the patient's index key (its main code's, and an Observation's components'). What the index
// reveals to a database reader: the clinical date of each record (like created_at does for
// records entered as they happen), how many codings and code systems a record's main code and
// components have, and which of one patient's records share a code or a code system; not
// which code or system, and nothing across patients. The date is kept at full precision, not coarsened, so that
// since/until are exact in SQL and pages stay full; it tells when, never what.
import { Injectable } from '@nestjs/common';
import { codeDigests, codeIndexKey, DataKey, DataKeyRing } from '../crypto';
import { clinicalDate, hasTerm, indexTerms, tokenTerm } from './clinical-facts';

/**
 * The version of the rules an entry was computed by. 2 reads the clinical dates and main codes
 * of more types (RiskAssessment, Specimen, NutritionOrder, …): rows of those types indexed by 1
 * are indexed again at start-up (migration 1764590000000 lists them), the others kept. 3 dates
 * a Period without a start by its end and a Timing by its first event, and adds the terms of
 * `system|` tokens and of Observations' components: every row is indexed again at start-up
 * (migration 1764610000000).
 */
export const INDEX_VERSION = 3;

/** A search over a patient's records: a FHIR token and a half-open window [since, until). */
export interface RecordSearch {
  code?: string | null;
  since?: Date | null;
  until?: Date | null;
}

/** The SQL conditions of a search, and the same search as a check of each decrypted row. */
export interface SearchConditions {
  where: string[];
  /** Null when the search is empty. */
  matches: ((resource: Record<string, unknown>, createdAt: Date) => boolean) | null;
}

export interface IndexEntry {
  effectiveAt: Date;
  codeDigests: Buffer[];
  indexVersion: number;
}

@Injectable()
export class RecordIndex {
  constructor(private readonly keys: DataKeyRing) {}

  /** The entry of a resource sealed under `dek`; its date falls back to `createdAt`. */
  entryFor(dek: DataKey, resource: Record<string, unknown>, createdAt: Date): IndexEntry {
    return {
      effectiveAt: clinicalDate(resource) ?? createdAt,
      codeDigests: codeDigests(codeIndexKey(dek.key), indexTerms(resource)),
      indexVersion: INDEX_VERSION,
    };
  }

  /**
   * The conditions over `records` (aliased `alias`) that find a search's rows by the index,
   * values appended to `params`; and the check that each row found really matches, from its
   * decrypted content (the index is a database column, so it only finds, never decides).
   */
  async searchSql(
    patientId: string,
    search: RecordSearch,
    alias: string,
    params: unknown[],
  ): Promise<SearchConditions> {
    const where: string[] = [];
    const term = search.code != null ? tokenTerm(search.code, 'code') : null;
    if (term !== null) {
      const digests = await this.digestsFor(patientId, [term]);
      if (!digests) return { where: ['FALSE'], matches: () => false };
      params.push(digests);
      where.push(`${alias}.code_digests && $${params.length}::bytea[]`);
    }
    const { since, until } = search;
    if (since) {
      params.push(since);
      where.push(`${alias}.effective_at >= $${params.length}`);
    }
    if (until) {
      params.push(until);
      where.push(`${alias}.effective_at < $${params.length}`);
    }
    if (!where.length) return { where, matches: null };
    return {
      where,
      matches: (resource, createdAt) => {
        if (term !== null && !hasTerm(resource, term)) return false;
        const at = (clinicalDate(resource) ?? createdAt).getTime();
        return (!since || at >= since.getTime()) && (!until || at < until.getTime());
      },
    };
  }

  /**
   * The digests to look for in a patient's index, one per term (in order); null when the
   * patient has no data key, so no record of theirs can match.
   */
  async digestsFor(patientId: string, terms: readonly string[]): Promise<Buffer[] | null> {
    const dek = await this.keys.existingLiveKey(patientId);
    return dek ? codeDigests(codeIndexKey(dek.key), terms) : null;
  }
}
