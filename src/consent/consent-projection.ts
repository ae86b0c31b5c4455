// Applies ledger grants to the consent projection, each row with its MAC. Idempotent and
// order-proof: applying the same grant twice changes nothing, and a revocation is never
// undone by a late copy of the grant (a grant only ever goes from ACTIVE to REVOKED). Only
// `repair`, which the reconciler calls with what the ledger holds now, may overwrite a
// REVOKED row with an ACTIVE one (a revocation forged in the database).
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { GrantRecord } from '@custodia/chaincode';
import { effectiveStatus } from '@custodia/chaincode/policy';
import { DataSource, EntityManager } from 'typeorm';
import { BoundedMap } from '../common/bounded-map';
import { ConsentGrantEntity } from './consent-grant.entity';
import { ConsentGrantModel } from './consent.model';
import { GrantAuthenticity, projectedGrant, toRuleGrant } from './grant-authenticity';

export { toRuleGrant } from './grant-authenticity';

/** Something that runs SQL and answers rows: a TypeORM DataSource/EntityManager or a pg pool. */
export interface SqlRunner {
  query(text: string, params?: unknown[]): Promise<unknown>;
}

const UPSERT = `INSERT INTO consent_grants (id, patient_id, grantee_type, grantee_id, purpose,
    actions, resource_types, categories, include_restricted, valid_from, valid_until, status,
    revoked_at, ledger_tx_id, revoked_tx_id, created_at, mac, patient_signed)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
  ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id,
    grantee_type = EXCLUDED.grantee_type, grantee_id = EXCLUDED.grantee_id,
    purpose = EXCLUDED.purpose, actions = EXCLUDED.actions,
    resource_types = EXCLUDED.resource_types, categories = EXCLUDED.categories,
    include_restricted = EXCLUDED.include_restricted, valid_from = EXCLUDED.valid_from,
    valid_until = EXCLUDED.valid_until, status = EXCLUDED.status,
    revoked_at = EXCLUDED.revoked_at, ledger_tx_id = EXCLUDED.ledger_tx_id,
    revoked_tx_id = EXCLUDED.revoked_tx_id, created_at = EXCLUDED.created_at, mac = EXCLUDED.mac,
    patient_signed = EXCLUDED.patient_signed`;

/** Writes one ledger grant as a projection row (the statement and its MAC). */
export async function writeGrant(
  db: SqlRunner,
  authenticity: GrantAuthenticity,
  g: GrantRecord,
  mode: 'apply' | 'repair',
): Promise<void> {
  const grant = projectedGrant(g);
  if (grant.status === 'REVOKED') authenticity.markRevoked(grant.id);
  // A copy of the grant from before its revocation: never written back.
  else if (authenticity.revokedOnLedger(grant.id)) return;
  const guard =
    mode === 'apply'
      ? ` WHERE NOT (consent_grants.status = 'REVOKED' AND EXCLUDED.status = 'ACTIVE')`
      : '';
  await db.query(UPSERT + guard, [
    grant.id,
    grant.patientId,
    grant.grantee.type,
    grant.grantee.id,
    grant.purpose,
    grant.actions,
    grant.resourceTypes,
    grant.categories,
    grant.includeRestricted,
    grant.validFrom,
    grant.validUntil,
    grant.status,
    grant.revokedAt,
    g.txId,
    g.revokedTxId ?? null,
    g.createdAt,
    authenticity.macOf(grant),
    grant.patientSigned,
  ]);
}

/** Ledger states of grants this process applied lately (see `ConsentProjection.applied`). */
const APPLIED_LIMIT = 10_000;

@Injectable()
export class ConsentProjection {
  private readonly appliedStates = new BoundedMap<string, true>(APPLIED_LIMIT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly authenticity: GrantAuthenticity,
  ) {}

  /** Grants whose ledger write a request is making and applying now, by grant id. */
  private readonly writing = new Map<string, Promise<unknown>>();

  async apply(g: GrantRecord, manager: EntityManager = this.db.manager): Promise<void> {
    await writeGrant(manager, this.authenticity, g, 'apply');
    this.appliedStates.set(stateKey(g), true);
  }

  /**
   * A request's write of a grant: `submit` commits it on the ledger, and what the ledger
   * answers is applied before this returns (read-your-writes). Meanwhile the projector, given
   * the same transaction's event, waits for it (`settled`) and then finds it applied.
   */
  async write(grantId: string, submit: () => Promise<GrantRecord>): Promise<GrantRecord> {
    const run = (async () => {
      const g = await submit();
      await this.apply(g);
      return g;
    })();
    const settled = run.catch(() => undefined);
    this.writing.set(grantId, settled);
    try {
      return await run;
    } finally {
      if (this.writing.get(grantId) === settled) this.writing.delete(grantId);
    }
  }

  /** Resolves once no request is writing the grant any more (at once when none is). */
  async settled(grantId: string): Promise<void> {
    await this.writing.get(grantId);
  }

  /**
   * Whether this process has already applied exactly this ledger state of the grant (the
   * request that wrote it applies it before answering): the projector then has nothing to
   * write but its checkpoint.
   */
  applied(g: GrantRecord): boolean {
    return this.appliedStates.get(stateKey(g)) === true;
  }

  /** Forgets what was applied (the projection is being rebuilt from the ledger). */
  forgetApplied(): void {
    this.appliedStates.clear();
  }
}

/** A grant's state at one transaction: its grant and, once revoked, its revocation. */
function stateKey(g: GrantRecord): string {
  return `${g.id}|${g.status}|${g.txId}|${g.revokedTxId ?? ''}`;
}

/** The model of a grant as the ledger answered it: what its projection row now holds. */
export function toGrantModelFromLedger(g: GrantRecord, now = new Date()): ConsentGrantModel {
  const grant = projectedGrant(g);
  return {
    ...grant,
    validFrom: new Date(grant.validFrom),
    validUntil: grant.validUntil ? new Date(grant.validUntil) : null,
    status: effectiveStatus(grant, now),
    revokedAt: grant.revokedAt ? new Date(grant.revokedAt) : null,
    ledgerTxId: g.txId,
    createdAt: new Date(g.createdAt),
  };
}

export function toGrantModel(row: ConsentGrantEntity, now = new Date()): ConsentGrantModel {
  const grant = toRuleGrant(row);
  return {
    ...grant,
    validFrom: row.validFrom,
    validUntil: row.validUntil,
    status: effectiveStatus(grant, now),
    revokedAt: row.revokedAt,
    ledgerTxId: row.ledgerTxId,
    createdAt: row.createdAt,
    patientSigned: grant.patientSigned,
  };
}
