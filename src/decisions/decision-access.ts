// Who may see an AI decision about a patient, and how seeing one is logged: one rule for
// aiDecisions and verifyDecision, so that neither shows what the other withholds, and a
// decision's inputs (record values) never reach a caller without an entry in the access log.
import { Injectable } from '@nestjs/common';
import { Actor, hasRole } from '../auth';
import { Decision, PolicyDecisionPoint } from '../consent';
import { PatientsService } from '../patients';
import { RecordAccess } from '../records';
import type { DecisionInput, DecisionInputs } from './decision-inputs';

@Injectable()
export class DecisionAccess {
  constructor(
    private readonly pdp: PolicyDecisionPoint,
    private readonly patients: PatientsService,
    private readonly records: RecordAccess,
  ) {}

  /** The caller's standing with the patient: themself, or a clinician's READ for TREATMENT. */
  async decide(actor: Actor, patientId: string): Promise<Decision> {
    const own = hasRole(actor, 'PATIENT') ? await this.patients.patientIdOf(actor) : null;
    return this.pdp.decide(actor, own, patientId, 'READ', 'TREATMENT');
  }

  /** Whether the caller may see a decision with these inputs: every record it read is admitted. */
  shows(decision: Decision, inputs: DecisionInputs): boolean {
    return inputs.features.every((f) => this.pdp.admits(decision, f.source));
  }

  /**
   * The records whose values the decisions' inputs show, in the patient's access log, as any
   * read of them is logged (RecordAccess.logPermitted): one event per grant that admits some
   * of them, and one more, break-glass, for those only an emergency admits.
   */
  logRead(
    actor: Actor,
    decision: Decision,
    patientId: string,
    inputs: readonly DecisionInputs[],
    reason: string | null = null,
  ): Promise<void> {
    const sources = new Map<string, DecisionInput['source']>();
    for (const f of inputs.flatMap((i) => i.features)) sources.set(f.source.recordId, f.source);
    const rows = [...sources.values()].map((s) => ({ ...s, id: s.recordId }));
    return this.records.logPermitted(actor, decision, patientId, rows, reason);
  }

  /** A refused attempt, in the access log of a patient who exists (as any refused read). */
  logDenied(actor: Actor, decision: Decision, patientId: string): Promise<void> {
    return this.records.logDenied(actor, decision, patientId, []);
  }
}
