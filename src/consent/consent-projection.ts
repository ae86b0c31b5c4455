// Applies ledger grants to the consent projection. Idempotent and order-proof: applying the
// same grant twice changes nothing, and a revocation is never undone by a late copy of the
// grant (a grant only ever goes from ACTIVE to REVOKED).
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { GrantRecord } from '@custodia/chaincode';
import { ConsentGrant, effectiveStatus } from '@custodia/chaincode/policy';
import { DataSource, EntityManager } from 'typeorm';
import { ConsentGrantEntity } from './consent-grant.entity';
import { ConsentGrantModel } from './consent.model';

@Injectable()
export class ConsentProjection {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async apply(g: GrantRecord, manager: EntityManager = this.db.manager): Promise<void> {
    await manager.query(
      `INSERT INTO consent_grants (id, patient_id, grantee_type, grantee_id, purpose, actions,
         resource_types, categories, include_restricted, valid_from, valid_until, status,
         revoked_at, ledger_tx_id, revoked_tx_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ON CONFLICT (id) DO UPDATE SET
         status = CASE WHEN consent_grants.status = 'REVOKED' THEN 'REVOKED' ELSE EXCLUDED.status END,
         revoked_at = COALESCE(consent_grants.revoked_at, EXCLUDED.revoked_at),
         revoked_tx_id = COALESCE(consent_grants.revoked_tx_id, EXCLUDED.revoked_tx_id)`,
      [
        g.id,
        g.patientId,
        g.grantee.type,
        g.grantee.id,
        g.purpose,
        g.actions,
        g.resourceTypes,
        g.categories,
        g.includeRestricted,
        g.validFrom,
        g.validUntil ?? null,
        g.status === 'REVOKED' ? 'REVOKED' : 'ACTIVE',
        g.revokedAt ?? null,
        g.txId,
        g.revokedTxId ?? null,
        g.createdAt,
      ],
    );
  }
}

/** The rule's view of a projected grant. */
export function toRuleGrant(row: ConsentGrantEntity): ConsentGrant {
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
  };
}
