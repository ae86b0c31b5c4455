// AI risk assessments of one patient (ARCHITECTURE 7b): allowed only where the clinician may
// READ, for TREATMENT, every record the model's features need, and unless the patient refused
// AI decisions. The inputs are built by training's own feature code from the records the
// clinician may read, and from no other, so that neither the answer nor a refusal depends on a
// record withheld from them (ARCHITECTURE 5). The decision goes on the ledger before the answer
// leaves, the inputs are sealed under the patient's data key, and the patient's access log
// shows what was read to decide.
import { Inject, Injectable } from '@nestjs/common';
import type { DecisionRecord } from '@custodia/chaincode';
import { ConsentGrant, recordAllowed } from '@custodia/chaincode/policy';
import { randomBytes, randomUUID } from 'node:crypto';
import { Actor } from '../auth';
import { AccessLog } from '../audit';
import { BadUserInputError, ConsentRequiredError, ForbiddenError } from '../common/errors';
import { checkDetachedJws } from '../common/detached-jws';
import { decodeCursor, encodeCursor, pageSize } from '../common/pagination';
import { Decision, PolicyDecisionPoint } from '../consent';
import { AGE_LOINC, featureValues } from '../federated/model/features';
import { Ledger, LEDGER } from '../ledger';
import { IntegrityMonitor } from '../observability';
import { PatientsService } from '../patients';
import { RecordsService } from '../records';
import { DecisionAccess } from './decision-access';
import { DecisionInputs, inputCommitment, standardisedInputs, unitsOf } from './decision-inputs';
import { DecisionRepository, DecisionRow } from './decision-repository';
import { AiDecisionModel, AiDecisionPageModel } from './decision.model';
import { AiDecisionSettings } from './ai-settings';
import { DecisionSeal } from './decision-seal';
import { Deployments } from './deployments.service';

@Injectable()
export class Assessments {
  constructor(
    private readonly repo: DecisionRepository,
    private readonly deployments: Deployments,
    private readonly pdp: PolicyDecisionPoint,
    private readonly access: DecisionAccess,
    private readonly patients: PatientsService,
    private readonly records: RecordsService,
    private readonly seal: DecisionSeal,
    private readonly settings: AiDecisionSettings,
    private readonly log: AccessLog,
    private readonly integrity: IntegrityMonitor,
    @Inject(LEDGER) private readonly ledger: Ledger,
  ) {}

  async assess(actor: Actor, patientId: string, modelId: string): Promise<AiDecisionModel> {
    const deployment = await this.deployments.require(modelId);
    const { metadata } = deployment;
    const decision = await this.pdp.decide(actor, null, patientId, 'READ', 'TREATMENT');
    if (decision.basis.kind !== 'grants') {
      await this.access.logDenied(actor, decision, patientId);
      throw new ConsentRequiredError(
        decision.basis.kind === 'emergency'
          ? 'An AI decision needs a consent grant; emergency access does not cover one. Ask the patient to grant READ for TREATMENT.'
          : "No active consent lets you read this patient's records for treatment, which an AI decision needs. Ask the patient to grant access.",
      );
    }
    const grants = decision.basis.grants;
    const codes = metadata.features.map((f) => f.code);
    const types = [
      ...(codes.some((c) => c !== AGE_LOINC) ? ['Observation'] : []),
      ...(codes.includes(AGE_LOINC) ? ['Patient'] : []),
    ];
    const uncovered = types.filter(
      (t) => !grants.some((g) => g.resourceTypes.length === 0 || g.resourceTypes.includes(t)),
    );
    if (uncovered.length > 0) {
      await this.access.logDenied(actor, decision, patientId);
      throw new ConsentRequiredError(
        `This model reads ${types.join(' and ')} records; your grants do not cover ${uncovered.join(' or ')}. Ask the patient to extend your grant.`,
      );
    }
    if (!(await this.allowed(patientId))) {
      throw new ForbiddenError(
        'This patient has refused AI decisions about them (setAiDecisions); no risk assessment was made.',
      );
    }

    const asOf = new Date().toISOString();
    // Only the records a grant lets this clinician read: the latest of those per feature is the
    // input, whatever newer record is withheld from them, and a value they may not read is
    // missing exactly as one the patient never recorded.
    const sources = await this.records.openForDecision(
      patientId,
      types,
      (facts) => this.pdp.permittingGrant(decision, facts) !== undefined,
    );
    const { values, missing } = featureValues(
      sources.map((s) => s.resource),
      codes,
      asOf,
      unitsOf(metadata),
    );
    if (missing.length > 0) {
      const named = missing.map((code) => {
        const f = metadata.features.find((m) => m.code === code)!;
        return `LOINC ${code} (${f.display}, in ${f.unit})`;
      });
      // Said from the grants alone, never from what they keep back: a value withheld from the
      // clinician stays indistinguishable from one never recorded.
      const categories = [...new Set(grants.flatMap((g) => g.categories))];
      const limited = grants.every((g) => g.categories.length > 0);
      throw new BadUserInputError(
        `This patient has no usable value for ${named.join(', ')}, which the model needs${
          limited
            ? `, among the records your grants cover (categories ${categories.join(', ')} only: the patient may grant more)`
            : ''
        }; nothing was assessed.`,
        'patientId',
      );
    }
    const used = values.map((v) => sources[v.source]);
    const grantId = grantFor(
      grants,
      used.map((s) => s.facts),
      decision,
      this.pdp,
    );
    const inputs: DecisionInputs = {
      asOf,
      features: values.map((v, i) => ({
        code: v.code,
        display: metadata.features[i].display,
        value: v.value,
        unit: v.unit,
        source: {
          recordId: used[i].id,
          version: used[i].version,
          resourceType: used[i].facts.resourceType,
          category: used[i].facts.category ?? null,
          sensitivity: used[i].facts.sensitivity,
        },
      })),
    };
    const model = await this.deployments.model(deployment);
    const probability = model.probability(standardisedInputs(metadata, inputs));
    const salt = randomBytes(32);
    const commitment = inputCommitment(salt, inputs);
    const id = randomUUID();
    const sealed = await this.seal.seal(id, patientId, { salt, inputs });

    // On the ledger before anything else is stored or answered: a failure here leaves nothing.
    const { txId, result } = await this.ledger.submit<DecisionRecord>(
      'decisions',
      'RecordDecision',
      [
        JSON.stringify({
          id,
          patientId,
          deploymentId: deployment.id,
          modelHash: deployment.modelHash,
          actorId: actor.id,
          actorOrganizationId: actor.organizationId ?? null,
          grantId,
          inputCommitment: commitment,
          output: probability,
        }),
      ],
    );
    const row: DecisionRow = {
      id,
      patientId,
      modelId: deployment.id,
      modelHash: deployment.modelHash,
      actorId: actor.id,
      grantId,
      keyId: sealed.keyId,
      inputsSealed: sealed.sealed,
      inputCommitment: commitment,
      probability,
      ledgerTxId: txId,
      createdAt: new Date(result.decidedAt),
    };
    await this.repo.insertDecision(row);
    await this.log.record({
      actorId: actor.id,
      patientId,
      recordIds: used.map((s) => s.id),
      action: 'READ',
      purpose: 'TREATMENT',
      decision: 'PERMIT',
      consentId: grantId,
      breakGlass: false,
      reason: `AI risk assessment ${id} with deployed model ${deployment.id}`,
      actorOrganizationId: actor.organizationId ?? undefined,
    });
    return toModel(row, inputs);
  }

  /**
   * The decisions about a patient, newest first: for the patient, or a clinician who may READ
   * every record a decision read (others are left out, as a records listing leaves them out).
   */
  async list(
    actor: Actor,
    patientId: string,
    first?: number | null,
    after?: string | null,
  ): Promise<AiDecisionPageModel> {
    const size = pageSize(first);
    const position = decodeCursor(after);
    const decision = await this.access.decide(actor, patientId);
    if (decision.basis.kind === 'none') {
      await this.access.logDenied(actor, decision, patientId);
      throw new ConsentRequiredError(
        "No active consent lets you read this patient's records or the AI decisions made about them. Ask the patient to grant access.",
      );
    }
    const rows = await this.repo.decisionsOf(patientId, size + 1, position);
    const page = rows.slice(0, size);
    const items: AiDecisionModel[] = [];
    for (const row of page) {
      const opened = await this.seal.open(row);
      if (!opened) {
        this.integrity.report('ai_decision', 'AI decision inputs failed to open; withheld', {
          decisionId: row.id,
        });
        continue;
      }
      // A clinician sees a decision only if their grants admit every record it read.
      if (!this.access.shows(decision, opened.inputs)) continue;
      items.push(toModel(row, opened.inputs));
    }
    if (items.length > 0) {
      const shown = items.map((d) => d.inputs as DecisionInputs);
      await this.access.logRead(actor, decision, patientId, shown);
    }
    const last = page[page.length - 1];
    return {
      items,
      nextCursor: rows.length > size && last ? encodeCursor(last) : null,
    };
  }

  /** Whether the patient allows AI decisions about them (default true). */
  async allowed(patientId: string): Promise<boolean> {
    return this.settings.allows(patientId);
  }

  /** `allowed` for many patients in one query, in their order. */
  allowedAll(patientIds: readonly string[]): Promise<boolean[]> {
    return this.settings.allowsAll(patientIds);
  }

  async setAllowed(actor: Actor, allow: boolean, signature: string | null = null): Promise<string> {
    checkDetachedJws(signature, 'signature', 'choicePayload(AI_DECISIONS, true)');
    const patientId = await this.patients.requirePatientId(actor);
    await this.settings.set(patientId, allow, signature);
    return patientId;
  }
}

/** A grant that covers every record used, else the one that covers the first. */
function grantFor(
  grants: readonly ConsentGrant[],
  facts: Parameters<typeof recordAllowed>[1][],
  decision: Decision,
  pdp: PolicyDecisionPoint,
): string {
  const covering = grants.find((g) => facts.every((f) => recordAllowed(g, f)));
  return covering?.id ?? pdp.permittingGrant(decision, facts[0])!;
}

export function toModel(row: DecisionRow, inputs: DecisionInputs): AiDecisionModel {
  return {
    id: row.id,
    patientId: row.patientId,
    modelId: row.modelId,
    modelHash: row.modelHash,
    actorId: row.actorId,
    probability: row.probability,
    inputs,
    inputCommitment: row.inputCommitment,
    ledgerTxId: row.ledgerTxId,
    createdAt: row.createdAt,
  };
}
