// A record's versions, newest first, each opened under the labels of its own version and
// judged against its own anchor on the ledger. A version row forged or altered in the database
// does not open (its AEAD binds record id, patient, version and labels), so it is withheld and
// reported, never served; one copied from another version fails the same way.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Actor } from '../../auth';
import { NotFoundError } from '../../common/errors';
import { isUuid } from '../../common/ids';
import { LedgerAnchors } from '../ledger-anchors';
import { anchorQuestion, recordModel, RecordAccess } from '../record-access';
import { OpenRow, RecordOpener } from '../record-opener';
import { SUPERSEDED_COLUMNS, VersionRow, versionEntity } from '../record-rows';
import { RecordEntity } from '../record.entity';
import { HealthRecordModel } from '../record.model';

export interface History {
  items: HealthRecordModel[];
  /** Versions (record id and version) that failed to open and were withheld. */
  withheld: { recordId: string; version: number }[];
}

@Injectable()
export class RecordHistory {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly access: RecordAccess,
    private readonly opener: RecordOpener,
    private readonly anchors: LedgerAnchors,
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
    const anchors = await this.anchors.lookup(readable.map(anchorQuestion));
    await this.access.logPermitted(actor, decision, current.patientId, [current]);
    return {
      items: readable.map((o, i) => recordModel(o, anchors[i])),
      withheld: versions
        .filter((_, i) => opened[i] === null)
        .map((v) => ({ recordId: v.id, version: v.version })),
    };
  }
}
