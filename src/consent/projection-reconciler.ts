// Compares the consent projection with the grants the ledger holds and repairs it: a grant
// missing from the projection, a row the ledger never wrote, and a row that differs from the
// ledger (or whose MAC fails) are each reported and rewritten from the ledger. One drift is
// never repaired: an authentic REVOKED row of a grant the ledger holds ACTIVE means the ledger
// lost the revocation (rolled back), and the revocation stands. Used at start-up,
// periodically, and by `custodia verify-ledger`.
import type { GrantRecord } from '@custodia/chaincode';
import canonicalize from 'canonicalize';
import type { Ledger } from '../ledger';
import { everyPage } from '../ledger/every-page';
import { SqlRunner, writeGrant } from './consent-projection';
import { ConsentGrantEntity } from './consent-grant.entity';
import { GrantAuthenticity, projectedGrant, toRuleGrant } from './grant-authenticity';

/** Projection columns named as the entity's properties, so the projection's mapping applies. */
/** consent_grants' columns named as the entity's properties, qualified by `alias` if given. */
export function grantColumns(alias?: string): string {
  const q = alias ? `${alias}.` : '';
  return `${q}id, ${q}patient_id AS "patientId", ${q}grantee_type AS "granteeType",
  ${q}grantee_id AS "granteeId", ${q}purpose, ${q}actions, ${q}resource_types AS "resourceTypes",
  ${q}categories, ${q}include_restricted AS "includeRestricted", ${q}valid_from AS "validFrom",
  ${q}valid_until AS "validUntil", ${q}status, ${q}revoked_at AS "revokedAt",
  ${q}patient_signed AS "patientSigned", ${q}mac`;
}

export const GRANT_COLUMNS = grantColumns();

export interface ProjectionDrift {
  /** On the ledger, absent from the projection. */
  missing: string[];
  /** In the projection, never written by the ledger. */
  extra: string[];
  /** Present in both, but the row's fields or its MAC do not match the ledger's grant. */
  changed: string[];
}

export interface ReconcileReport extends ProjectionDrift {
  /**
   * Grants the ledger holds ACTIVE whose row here is authentic and REVOKED: a revocation is
   * written to the ledger before the row, so the ledger lost it (restored from a backup, or
   * rolled back). Reported, never "repaired": the revocation stands, here and in memory.
   */
  revocationsLost: string[];
  /** The transaction that wrote each missing grant, as the ledger holds it. */
  missingTxIds: ReadonlyMap<string, string>;
  ledgerGrants: number;
  projectedRows: number;
  repaired: boolean;
}

/** The drift between what the ledger holds and the projection's rows. */
export function compareProjection(
  ledger: readonly GrantRecord[],
  rows: readonly ConsentGrantEntity[],
  authenticity: GrantAuthenticity,
): ProjectionDrift {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const drift: ProjectionDrift = { missing: [], extra: [], changed: [] };
  for (const g of ledger) {
    const row = byId.get(g.id);
    byId.delete(g.id);
    if (!row) drift.missing.push(g.id);
    else if (
      !authenticity.authentic(row) ||
      canonicalize(toRuleGrant(row)) !== canonicalize(projectedGrant(g))
    ) {
      drift.changed.push(g.id);
    }
  }
  drift.extra.push(...byId.keys());
  return drift;
}

/**
 * The grants the ledger holds ACTIVE whose projection row is authentic (MAC'd by this API from
 * what the ledger once said) and REVOKED: only a ledger that went back in time holds them so.
 */
export function lostRevocations(
  ledger: readonly GrantRecord[],
  rows: readonly ConsentGrantEntity[],
  authenticity: GrantAuthenticity,
): string[] {
  const revokedHere = new Set(
    rows.filter((r) => r.status === 'REVOKED' && authenticity.authentic(r)).map((r) => r.id),
  );
  return ledger.filter((g) => g.status === 'ACTIVE' && revokedHere.has(g.id)).map((g) => g.id);
}

export function driftCount(d: ProjectionDrift): number {
  return d.missing.length + d.extra.length + d.changed.length;
}

export class ProjectionReconciler {
  constructor(
    /** Its query answers the rows, as a TypeORM DataSource's does. */
    private readonly db: SqlRunner,
    private readonly ledger: Ledger,
    private readonly authenticity: GrantAuthenticity,
  ) {}

  /** Every grant on the ledger, page by page. */
  ledgerGrants(): Promise<GrantRecord[]> {
    return everyPage<GrantRecord>(this.ledger, 'consent', 'ListConsents', 'grants');
  }

  /**
   * Compares, then (with `repair`) rewrites every drifted grant from the ledger. The projection
   * is read before the ledger, so a grant committed in between shows as missing (and is
   * re-checked), never as extra: a row is deleted only if the ledger never held it.
   */
  async run(options: { repair: boolean }): Promise<ReconcileReport> {
    const rows = (await this.db.query(
      `SELECT ${GRANT_COLUMNS} FROM consent_grants`,
    )) as ConsentGrantEntity[];
    const ledger = await this.ledgerGrants();
    for (const g of ledger) if (g.status === 'REVOKED') this.authenticity.markRevoked(g.id);
    // Asked again, one by one: a peer that had not yet committed the revocation's block
    // (several peers behind a gateway) is not a ledger that lost it.
    const revocationsLost: string[] = [];
    for (const id of lostRevocations(ledger, rows, this.authenticity)) {
      const again = await this.ledger.evaluate<GrantRecord>('consent', 'GetConsent', [id]);
      if (again.status === 'ACTIVE') revocationsLost.push(id);
    }
    for (const id of revocationsLost) this.authenticity.markRevoked(id);
    let drift = compareProjection(ledger, rows, this.authenticity);
    const kept = new Set(revocationsLost);
    drift = { ...drift, changed: drift.changed.filter((id) => !kept.has(id)) };
    // What the projector applied meanwhile is not drift: compare those rows again.
    const suspects = [...drift.missing, ...drift.changed];
    if (suspects.length) {
      const fresh = (await this.db.query(
        `SELECT ${GRANT_COLUMNS} FROM consent_grants WHERE id = ANY($1::text[])`,
        [suspects],
      )) as ConsentGrantEntity[];
      const again = compareProjection(
        ledger.filter((g) => suspects.includes(g.id)),
        fresh,
        this.authenticity,
      );
      drift = {
        ...again,
        changed: again.changed.filter((id) => !kept.has(id)),
        extra: drift.extra,
      };
    }
    if (options.repair && driftCount(drift)) {
      const byId = new Map(ledger.map((g) => [g.id, g]));
      for (const id of [...drift.missing, ...drift.changed]) {
        await writeGrant(this.db, this.authenticity, byId.get(id)!, 'repair');
      }
      if (drift.extra.length) {
        await this.db.query('DELETE FROM consent_grants WHERE id = ANY($1::text[])', [drift.extra]);
      }
    }
    const txOf = new Map(ledger.map((g) => [g.id, g.txId]));
    return {
      ...drift,
      revocationsLost,
      missingTxIds: new Map(drift.missing.map((id) => [id, txOf.get(id)!])),
      ledgerGrants: ledger.length,
      projectedRows: rows.length,
      repaired: options.repair,
    };
  }
}
