// Anchors of access-log chain heads, so a log rewritten after the fact no longer matches what
// the ledger holds. A head is keyed by the anchoring organisation (its MSP, from the caller's
// identity) and a chain id: every API instance with its own database keeps its own log, so an
// organisation running several names one chain per instance (the API's INSTANCE_ID), and the
// heads of its instances never overwrite or block one another.
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import { caller, emit, getJson, key, KEYS, putJson, txTime, values } from './state';
import * as v from './validation';
import { ChaincodeError } from './validation';

export interface AuditHead {
  organization: string;
  chainId: string;
  seq: number;
  headHash: string;
  txId: string;
  anchoredAt: string;
}

export const AUDIT_EVENTS = { anchored: 'AuditHeadAnchored' } as const;

@Info({ title: 'audit', description: 'Anchored heads of the access-log hash chains' })
export class AuditContract extends Contract {
  constructor() {
    super('audit');
  }

  @Transaction()
  @Returns('string')
  async AnchorAuditHead(
    ctx: Context,
    chainId: string,
    seq: string,
    headHash: string,
  ): Promise<string> {
    const chain = v.id(chainId, 'chainId');
    const n = v.positiveInt(seq, 'seq');
    const hash = v.sha256(headHash, 'headHash');
    const org = caller(ctx);
    const k = key(ctx, KEYS.auditHead, [org, chain]);
    const previous = await getJson<AuditHead>(ctx, k);
    if (previous && n <= previous.seq) {
      throw new ChaincodeError(
        'CONFLICT',
        `seq ${n} does not advance chain ${chain} (already anchored at ${previous.seq})`,
      );
    }
    const head: AuditHead = {
      organization: org,
      chainId: chain,
      seq: n,
      headHash: hash,
      txId: ctx.stub.getTxID(),
      anchoredAt: txTime(ctx),
    };
    await putJson(ctx, k, head);
    emit(ctx, AUDIT_EVENTS.anchored, head);
    return JSON.stringify(head);
  }

  @Transaction(false)
  @Returns('string')
  async GetAuditHead(ctx: Context, organization: string, chainId: string): Promise<string> {
    const org = v.id(organization, 'organization');
    const chain = v.id(chainId, 'chainId');
    const head = await getJson<AuditHead>(ctx, key(ctx, KEYS.auditHead, [org, chain]));
    if (!head)
      throw new ChaincodeError('NOT_FOUND', `chain ${chain} of ${org} has no anchored head`);
    return JSON.stringify(head);
  }

  /** The latest head of every chain an organisation anchored (one per instance), by chain id. */
  @Transaction(false)
  @Returns('string')
  async ListAuditHeads(ctx: Context, organization: string): Promise<string> {
    const org = v.id(organization, 'organization');
    return JSON.stringify(await values<AuditHead>(ctx, KEYS.auditHead, [org]));
  }
}
