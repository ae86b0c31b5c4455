// The policy decision point: decides, for one request, which of a patient's records the
// caller may read, in one query over the consent projection — with the one rule of
// chaincode/src/policy.ts, never a copy of it. It answers the shape of question Immich's
// access repository does: "which of these may this caller touch?"
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  AccessRequest,
  Action,
  ConsentGrant,
  grantApplies,
  permits,
  Purpose,
  RecordFacts,
} from '@custodia/chaincode/policy';
import { DataSource } from 'typeorm';
import { Actor, hasRole } from '../auth';
import { ConsentGrantEntity } from './consent-grant.entity';
import { toRuleGrant } from './consent-projection';
import { EmergencyService } from './emergency.service';

export type AccessBasis =
  | { kind: 'self' }
  | { kind: 'grants'; grants: ConsentGrant[] }
  | { kind: 'emergency'; emergencyId: string; reason: string }
  | { kind: 'none' };

export interface Decision {
  basis: AccessBasis;
  request: AccessRequest;
}

@Injectable()
export class PolicyDecisionPoint {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly emergencies: EmergencyService,
  ) {}

  /**
   * On what basis (if any) `actor` may act on `patientId`'s records now: as the patient, under
   * grants that apply to who/what/why/when (whatever their record filters), or under a
   * declared emergency (READ only).
   */
  async decide(
    actor: Actor,
    ownPatientId: string | null,
    patientId: string,
    action: Action,
    purpose: Purpose,
  ): Promise<Decision> {
    const request: AccessRequest = {
      actor: { id: actor.id, organizationId: actor.organizationId ?? null },
      patientId,
      action,
      purpose,
      at: new Date(),
    };
    if (hasRole(actor, 'PATIENT') && ownPatientId === patientId) {
      return { basis: { kind: 'self' }, request };
    }
    if (!hasRole(actor, 'CLINICIAN')) return { basis: { kind: 'none' }, request };
    const grants = (await this.candidateGrants(request)).filter((g) => grantApplies(g, request));
    if (grants.length) return { basis: { kind: 'grants', grants }, request };
    if (action === 'READ') {
      const emergency = await this.emergencies.active(patientId, actor.id, request.at as Date);
      if (emergency) {
        return {
          basis: { kind: 'emergency', emergencyId: emergency.id, reason: emergency.reason },
          request,
        };
      }
    }
    return { basis: { kind: 'none' }, request };
  }

  /** The first grant (by id) that permits reading this record, or undefined. */
  permittingGrant(decision: Decision, record: RecordFacts): string | undefined {
    if (decision.basis.kind !== 'grants') return undefined;
    const request = { ...decision.request, record };
    return decision.basis.grants.find((g) => permits(g, request))?.id;
  }

  /** Whether the decision admits this record at all. */
  admits(decision: Decision, record: RecordFacts): boolean {
    switch (decision.basis.kind) {
      case 'self':
      case 'emergency':
        return true;
      case 'grants':
        return this.permittingGrant(decision, record) !== undefined;
      case 'none':
        return false;
    }
  }

  /**
   * A SQL condition over `records` (alias `alias`) equal to the grants' record filters, so
   * that a page holds exactly the permitted records; its values are appended to `params`
   * ($n placeholders). Rows are checked with the rule again after loading; this only keeps
   * pages full.
   */
  recordFilterSql(decision: Decision, alias: string, params: unknown[]): string | null {
    if (decision.basis.kind !== 'grants') return null;
    const clauses = decision.basis.grants.map((g) => {
      const parts: string[] = [];
      if (g.resourceTypes.length) {
        params.push(g.resourceTypes);
        parts.push(`${alias}.resource_type = ANY($${params.length}::text[])`);
      }
      if (g.categories.length) {
        params.push(g.categories);
        parts.push(`${alias}.category = ANY($${params.length}::text[])`);
      }
      if (!g.includeRestricted) parts.push(`${alias}.sensitivity = 'NORMAL'`);
      return parts.length ? `(${parts.join(' AND ')})` : 'TRUE';
    });
    return `(${clauses.join(' OR ')})`;
  }

  private async candidateGrants(request: AccessRequest): Promise<ConsentGrant[]> {
    const rows = await this.db
      .getRepository(ConsentGrantEntity)
      .createQueryBuilder('g')
      .where('g.patient_id = :patientId', { patientId: request.patientId })
      .andWhere("g.status = 'ACTIVE'")
      .andWhere(
        `((g.grantee_type = 'CLINICIAN' AND g.grantee_id = :actorId)
          OR (g.grantee_type = 'ORGANIZATION' AND g.grantee_id = :orgId))`,
        { actorId: request.actor.id, orgId: request.actor.organizationId ?? '' },
      )
      .getMany();
    return rows.map(toRuleGrant);
  }
}
