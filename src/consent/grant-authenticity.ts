// Which consent-projection rows to believe. A row is believed only when its MAC (under a
// KEK-derived key that never reaches the database) matches every field the rule reads, and
// when the ledger has not revoked it: the set of revoked grant ids is learnt from the ledger
// (revocations made here, ledger events, reconciliation) and held in memory, so restoring an
// older, correctly MAC'd ACTIVE copy of a revoked grant does not bring it back.
import type { GrantRecord } from '@custodia/chaincode';
import type { ConsentGrant } from '@custodia/chaincode/policy';
import { BoundedMap } from '../common/bounded-map';
import { RowAuthenticator } from '../records/crypto';
import { ConsentGrantEntity } from './consent-grant.entity';

/**
 * Rows verified once and remembered (under 1 kB each): a training node reads every grant of
 * its organisation's patients each round, and canonicalising and MACing each one again cost
 * about 30 µs a row, a tenth of a round. Past the bound the oldest are verified again.
 */
const VERIFIED_ROWS = 20_000;

/** A grant as the projection holds it: the rule's fields and whether the patient signed it. */
export interface ProjectedGrant extends ConsentGrant {
  patientSigned: boolean;
}

export class GrantAuthenticity {
  private readonly revoked = new Set<string>();
  /**
   * By grant id, the last row that verified: its MAC and its grant. A row equal to it in the
   * MAC and in the fields the MAC covers is that row, so it is believed without recomputing
   * the MAC; any other is verified.
   */
  private readonly verified = new BoundedMap<
    string,
    { mac: Buffer; grant: Readonly<ProjectedGrant> }
  >(VERIFIED_ROWS);

  constructor(private readonly rows: RowAuthenticator) {}

  /** The MAC a projection row of this grant carries. */
  macOf(grant: ProjectedGrant): Buffer {
    return this.rows.mac('consent-grant/v1', ruleFields(grant));
  }

  /** Whether the row is exactly what the ledger wrote (its MAC covers every rule field). */
  authentic(row: ConsentGrantEntity): boolean {
    return this.authenticGrant(row) !== null;
  }

  /** The row's rule fields when it is authentic, else null. */
  private authenticGrant(row: ConsentGrantEntity): ProjectedGrant | null {
    const grant = toRuleGrant(row);
    const fields = ruleFields(grant);
    const known = this.verified.get(row.id);
    if (
      known &&
      row.mac &&
      known.mac.equals(row.mac) &&
      sameFields(ruleFields(known.grant), fields)
    ) {
      return grant;
    }
    if (!this.rows.verify('consent-grant/v1', fields, row.mac)) return null;
    this.verified.set(row.id, { mac: Buffer.from(row.mac!), grant: frozenCopy(grant) });
    return grant;
  }

  /**
   * Rows read by id, patient and MAC only (a training node's selection, an update's intake and
   * a round's closing each read every grant of hundreds of patients, round after round). A row
   * whose MAC this process verified before is the grant that MAC covers, whatever its other
   * columns say now (the MAC covers every rule field), provided it names that grant's patient:
   * callers join the patient's other rows by that column. Those are `grants` (revoked ones on
   * the ledger left out, as `believed` does); the ids of the others are `unknown`, to be read
   * whole and verified.
   */
  recalled(rows: readonly { id: string; patientId: string; mac: Buffer | null }[]): {
    grants: Readonly<ProjectedGrant>[];
    unknown: string[];
  } {
    const grants: Readonly<ProjectedGrant>[] = [];
    const unknown: string[] = [];
    for (const row of rows) {
      const known = this.verified.get(row.id);
      if (!known || !row.mac || !known.mac.equals(row.mac)) unknown.push(row.id);
      else if (known.grant.patientId !== row.patientId) unknown.push(row.id);
      else if (known.grant.status !== 'ACTIVE' || !this.revoked.has(row.id)) {
        grants.push(known.grant);
      }
    }
    return { grants, unknown };
  }

  markRevoked(grantId: string): void {
    this.revoked.add(grantId);
  }

  /** True once this process has learnt from the ledger that the grant is revoked. */
  revokedOnLedger(grantId: string): boolean {
    return this.revoked.has(grantId);
  }

  /** The grants among `rows` that may be believed: authentic, and not revoked on the ledger. */
  believed(rows: ConsentGrantEntity[]): {
    grants: ProjectedGrant[];
    forged: ConsentGrantEntity[];
  } {
    const grants: ProjectedGrant[] = [];
    const forged: ConsentGrantEntity[] = [];
    for (const row of rows) {
      const grant = this.authenticGrant(row);
      if (!grant) forged.push(row);
      else if (row.status !== 'ACTIVE' || !this.revoked.has(row.id)) grants.push(grant);
    }
    return { grants, forged };
  }
}

/** The rule's view of a projected grant (and whether the patient signed it). */
export function toRuleGrant(row: ConsentGrantEntity): ProjectedGrant {
  return {
    id: row.id,
    patientId: row.patientId,
    grantee: { type: row.granteeType as ConsentGrant['grantee']['type'], id: row.granteeId },
    purpose: row.purpose as ConsentGrant['purpose'],
    actions: row.actions as ConsentGrant['actions'],
    resourceTypes: row.resourceTypes,
    categories: row.categories,
    includeRestricted: row.includeRestricted,
    validFrom: row.validFrom.toISOString(),
    validUntil: row.validUntil?.toISOString() ?? null,
    status: row.status as ConsentGrant['status'],
    revokedAt: row.revokedAt?.toISOString() ?? null,
    patientSigned: row.patientSigned ?? false,
  };
}

/**
 * Whether two grants' MAC'd fields (ruleFields) are equal, value by value: strings, booleans,
 * null, or lists of strings. Derived from ruleFields, so a field the MAC comes to cover is
 * compared too.
 */
function sameFields(a: RuleFields, b: RuleFields): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => {
    const x = a[k];
    const y = b[k];
    return Array.isArray(x) ? Array.isArray(y) && sameList(x, y) : x === y;
  });
}

/** A grant that shares nothing with `g` and cannot be changed (it is handed out again). */
function frozenCopy(g: ProjectedGrant): Readonly<ProjectedGrant> {
  return Object.freeze({
    ...g,
    grantee: Object.freeze({ ...g.grantee }),
    actions: Object.freeze([...g.actions]) as ProjectedGrant['actions'],
    resourceTypes: Object.freeze([...g.resourceTypes]) as string[],
    categories: Object.freeze([...g.categories]) as string[],
  });
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A ledger grant as the projection stores it: ACTIVE or REVOKED, instants in ISO form. */
export function projectedGrant(g: GrantRecord): ProjectedGrant {
  const iso = (t: string | null | undefined) => (t ? new Date(t).toISOString() : null);
  return {
    id: g.id,
    patientId: g.patientId,
    grantee: { type: g.grantee.type, id: g.grantee.id },
    purpose: g.purpose,
    actions: [...g.actions],
    resourceTypes: [...g.resourceTypes],
    categories: [...g.categories],
    includeRestricted: g.includeRestricted,
    validFrom: iso(g.validFrom)!,
    validUntil: iso(g.validUntil),
    status: g.status === 'REVOKED' ? 'REVOKED' : 'ACTIVE',
    revokedAt: iso(g.revokedAt),
    patientSigned: g.patientSigned === true,
  };
}

/** What a grant row's MAC covers. */
type RuleFields = Record<string, unknown>;

/**
 * Exactly the fields the consent rule reads, in a fixed shape, and the patient's signature
 * when there is one (so rows from before signatures keep their MACs): what the MAC covers.
 */
function ruleFields(g: ProjectedGrant): RuleFields {
  return {
    id: g.id,
    patientId: g.patientId,
    granteeType: g.grantee.type,
    granteeId: g.grantee.id,
    purpose: g.purpose,
    actions: g.actions,
    resourceTypes: g.resourceTypes,
    categories: g.categories,
    includeRestricted: g.includeRestricted,
    validFrom: g.validFrom,
    validUntil: g.validUntil ?? null,
    status: g.status,
    revokedAt: g.revokedAt ?? null,
    ...(g.patientSigned ? { patientSigned: true } : {}),
  };
}
