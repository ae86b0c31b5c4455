// A record's versions, newest first, each opened under the labels of its own version and
// judged against its own anchor on the ledger. A version row forged or altered in the database
// does not open (its AEAD binds record id, patient, version and labels), so it is withheld and
// reported, never served; one copied from another version fails the same way. To a grantee,
// a record whose current version fails its check has no history (see readsAsOwner).
import { Inject, Injectable } from '@nestjs/common';
import type { RecordAnchor } from '@custodia/chaincode';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from '../../auth';
import { InternalError, NotFoundError } from '../../common/errors';
import { Ledger, LEDGER } from '../../ledger';
import { isUuid } from '../../common/ids';
import { LedgerAnchors } from '../ledger-anchors';
import { AnchorLookup } from '../record-integrity';
import {
  anchorQuestion,
  readsAsOwner,
  recordModel,
  RecordAccess,
  servable,
} from '../record-access';
import { OpenRow, RecordOpener } from '../record-opener';
import { SUPERSEDED_COLUMNS, VersionRow, versionEntity } from '../record-rows';
import { RecordEntity } from '../record.entity';
import { HealthRecordModel } from '../record.model';

export interface History {
  items: HealthRecordModel[];
  /** Versions (record id and version) that failed to open and were withheld. */
  withheld: { recordId: string; version: number }[];
  /** Versions the ledger holds that storage does not: rolled back or deleted. */
  missing: number[];
}

@Injectable()
export class RecordHistory {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly access: RecordAccess,
    private readonly opener: RecordOpener,
    private readonly anchors: LedgerAnchors,
    @Inject(LEDGER) private readonly ledger: Ledger,
  ) {}

  async history(actor: Actor, id: string): Promise<History> {
    const notFound = new NotFoundError('No record with that id.');
    if (!isUuid(id)) throw notFound;
    const current = await this.db.getRepository(RecordEntity).findOneBy({ id });
    if (!current) throw notFound;
    const decision = await this.access.decide(actor, current.patientId);
    if (!this.access.admits(decision, current)) {
      await this.access.logDenied(actor, decision, current.patientId, [id]);
      throw notFound;
    }
    const older = await this.db.query<VersionRow[]>(
      `SELECT ${SUPERSEDED_COLUMNS} FROM record_versions v
       WHERE v.record_id = $1 AND v.version < $2 ORDER BY v.version DESC`,
      [id, current.version],
    );
    // Each version answers for its own labels: one the caller's grants do not cover (its
    // category or sensitivity were different then) is left out, as a listing leaves it out.
    const versions = [current, ...older.map(versionEntity)].filter((v) =>
      this.access.admits(decision, v),
    );
    const opened = await Promise.all(versions.map((v) => this.opener.open(v)));
    const readable = opened.filter((o): o is OpenRow => o !== null);
    // The ledger's own list of versions, in one call: a version it holds that storage lacks
    // (a row rolled back to an older version, or deleted) is reported, not silently absent.
    const onLedger = await this.ledgerVersions(id);
    let anchors: AnchorLookup[];
    let missing: number[] = [];
    if (onLedger) {
      const stored = new Set([current.version, ...older.map((v) => v.version)]);
      missing = [...onLedger.keys()].filter((v) => !stored.has(v)).sort((a, b) => b - a);
      const latestVersion = Math.max(...onLedger.keys());
      anchors = await Promise.all(
        readable.map(async (o): Promise<AnchorLookup> => {
          const a = onLedger.get(o.row.version);
          if (!a) return { state: 'absent' };
          const found = { state: 'anchored', contentHash: a.contentHash, txId: a.txId } as const;
          // The current row judged as `record` judges it (rolled back, or amended since).
          return o.row.version === current.version
            ? this.anchors.judge(anchorQuestion(o), found, latestVersion)
            : found;
        }),
      );
    } else {
      anchors = await this.anchors.lookup(
        readable.map((o) => ({
          ...anchorQuestion(o),
          current: o.row.version === current.version,
        })),
      );
    }
    const owner = readsAsOwner(decision);
    if (!owner) {
      // To a grantee a current version that fails its check (does not open, or was rolled
      // back) is as absent as a record that does not exist, its history with it; an older
      // version that does not open is left out unmarked (see readsAsOwner).
      const currentAt = readable.findIndex((o) => o.row.version === current.version);
      if (currentAt < 0 || !servable(decision, anchors[currentAt])) {
        await this.access.logDenied(actor, decision, current.patientId, [id]);
        throw notFound;
      }
    }
    await this.access.logPermitted(actor, decision, current.patientId, [current]);
    return {
      items: readable.map((o, i) => recordModel(o, anchors[i])),
      withheld: owner
        ? versions
            .filter((_, i) => opened[i] === null)
            .map((v) => ({ recordId: v.id, version: v.version }))
        : [],
      missing,
    };
  }

  /** The ledger's anchors of the record by version, or null when the ledger cannot be asked. */
  private async ledgerVersions(id: string): Promise<Map<number, RecordAnchor> | null> {
    try {
      const anchors = await this.ledger.evaluate<RecordAnchor[]>('records', 'RecordHistory', [id]);
      return new Map(anchors.map((a) => [a.version, a]));
    } catch {
      return null;
    }
  }
}

/** Names the record and the versions; says nothing of what they held. */
export function missingVersions(recordId: string, versions: number[]): InternalError {
  return new InternalError(
    `Record ${recordId}: version(s) ${versions.join(', ')} are anchored on the ledger but missing from storage (rolled back or deleted). Report this record id to your administrator.`,
    { recordId },
  );
}
