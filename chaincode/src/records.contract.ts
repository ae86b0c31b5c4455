// Record commitments: each version of a record is anchored once, in order, by the
// organisation that holds the record. Only pseudonymous ids and salted hashes go here.
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import {
  caller,
  emit,
  getJson,
  key,
  KEYS,
  pad,
  putJson,
  txTime,
  values,
  valuesPage,
} from './state';
import * as v from './validation';
import { ChaincodeError } from './validation';

export interface RecordAnchor {
  recordId: string;
  patientId: string;
  version: number;
  contentHash: string;
  txId: string;
  anchoredAt: string;
  anchoredBy: string;
}

export const RECORD_EVENTS = { anchored: 'RecordAnchored' } as const;

@Info({ title: 'records', description: 'Anchors of record versions (salted content hashes)' })
export class RecordsContract extends Contract {
  constructor() {
    super('records');
  }

  @Transaction()
  @Returns('string')
  async AnchorRecord(
    ctx: Context,
    recordId: string,
    version: string,
    patientId: string,
    contentHash: string,
  ): Promise<string> {
    const rid = v.id(recordId, 'recordId');
    const ver = v.positiveInt(version, 'version');
    const pid = v.id(patientId, 'patientId');
    const hash = v.sha256(contentHash, 'contentHash');
    const k = key(ctx, KEYS.anchor, [rid]);
    const latest = await getJson<RecordAnchor>(ctx, k);
    const msp = caller(ctx);
    if (latest) {
      if (latest.patientId !== pid) {
        throw new ChaincodeError('CONFLICT', `record ${rid} is anchored for another patient`);
      }
      if (latest.anchoredBy !== msp) {
        throw new ChaincodeError('FORBIDDEN', `record ${rid} is held by another organisation`);
      }
    }
    const expected = (latest?.version ?? 0) + 1;
    if (ver !== expected) {
      throw new ChaincodeError(
        'CONFLICT',
        `version ${ver} of record ${rid} is not the next one (expected ${expected})`,
      );
    }
    const anchor: RecordAnchor = {
      recordId: rid,
      patientId: pid,
      version: ver,
      contentHash: hash,
      txId: ctx.stub.getTxID(),
      anchoredAt: txTime(ctx),
      anchoredBy: msp,
    };
    await putJson(ctx, k, anchor);
    await putJson(ctx, key(ctx, KEYS.anchorVersion, [rid, pad(ver)]), anchor);
    emit(ctx, RECORD_EVENTS.anchored, anchor);
    return JSON.stringify(anchor);
  }

  /**
   * Compares a hash with the one anchored for that version, and says which version is the
   * record's latest: a stored row of an older version is a record rolled back.
   */
  @Transaction(false)
  @Returns('string')
  async VerifyRecord(
    ctx: Context,
    recordId: string,
    version: string,
    contentHash: string,
  ): Promise<string> {
    const rid = v.id(recordId, 'recordId');
    const ver = v.positiveInt(version, 'version');
    const hash = v.sha256(contentHash, 'contentHash');
    const anchor = await getJson<RecordAnchor>(ctx, key(ctx, KEYS.anchorVersion, [rid, pad(ver)]));
    if (!anchor)
      throw new ChaincodeError('NOT_FOUND', `version ${ver} of record ${rid} is not anchored`);
    const latest = await getJson<RecordAnchor>(ctx, key(ctx, KEYS.anchor, [rid]));
    return JSON.stringify({
      ...anchor,
      matches: anchor.contentHash === hash,
      latestVersion: latest?.version ?? anchor.version,
    });
  }

  /**
   * One page of every record's latest anchor, in key order (pageSize 1–1000; bookmark '' for
   * the first page, then the one returned, '' after the last): what verify-ledger compares
   * the stored records with, so that a record deleted or rolled back in storage is found.
   */
  @Transaction(false)
  @Returns('string')
  async ListRecordAnchors(ctx: Context, pageSize: string, bookmark: string): Promise<string> {
    const page = await valuesPage<RecordAnchor>(ctx, KEYS.anchor, pageSize, bookmark);
    return JSON.stringify({ anchors: page.values, bookmark: page.bookmark });
  }

  @Transaction(false)
  @Returns('string')
  async RecordHistory(ctx: Context, recordId: string): Promise<string> {
    const rid = v.id(recordId, 'recordId');
    return JSON.stringify(await values<RecordAnchor>(ctx, KEYS.anchorVersion, [rid]));
  }
}
