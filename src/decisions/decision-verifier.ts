// verifyDecision: recomputes a decision from its stored inputs and the deployed model, and
// checks the commitment and the output against what the ledger holds. Only the ledger is
// trusted: a row forged or altered in the database does not verify. Opening the inputs reads
// record values, so a patient or clinician sees only a decision aiDecisions would show them,
// and each verification is in the patient's access log as aiDecisions' reads are.
import { Inject, Injectable } from '@nestjs/common';
import type { DecisionRecord, ModelDeployment } from '@custodia/chaincode';
import { Actor, hasRole } from '../auth';
import { CustodiaError, NotFoundError } from '../common/errors';
import { Ledger, LEDGER } from '../ledger';
import { PatientsService } from '../patients';
import { IntegrityStatus } from '../records';
import { DecisionAccess } from './decision-access';
import { inputCommitment, standardisedInputs } from './decision-inputs';
import { DecisionRepository } from './decision-repository';
import { DecisionVerificationModel } from './decision.model';
import { DecisionSeal } from './decision-seal';
import { Deployments } from './deployments.service';

@Injectable()
export class DecisionVerifier {
  constructor(
    private readonly repo: DecisionRepository,
    private readonly deployments: Deployments,
    private readonly seal: DecisionSeal,
    private readonly access: DecisionAccess,
    private readonly patients: PatientsService,
    @Inject(LEDGER) private readonly ledger: Ledger,
  ) {}

  async verify(actor: Actor, id: string): Promise<DecisionVerificationModel> {
    const notFound = new NotFoundError('No AI decision with that id.');
    const row = await this.repo.decision(id);
    if (!row) throw notFound;
    // An administrator checks decisions against the ledger without any access to the patient
    // (and so without an access-log entry: no grant stands behind it); anyone else as a reader.
    const decision = hasRole(actor, 'ADMIN')
      ? null
      : await this.access.decide(actor, row.patientId);
    // One the caller may not see answers as one that does not exist, and is logged as refused:
    // without access to the patient (told before anything is decrypted), or, as aiDecisions
    // leaves it out, a clinician's whose inputs do not open or read a record they may not read.
    if (decision?.basis.kind === 'none') {
      await this.access.logDenied(actor, decision, row.patientId);
      throw notFound;
    }
    const opened = await this.seal.open(row);
    const self = decision?.basis.kind === 'self';
    if (decision && !self && (!opened || !this.access.shows(decision, opened.inputs))) {
      await this.access.logDenied(actor, decision, row.patientId);
      throw notFound;
    }
    const problems: string[] = [];
    const onLedger = await this.onLedger<DecisionRecord>('GetDecision', row.id);
    if (!onLedger) problems.push('the decision is not on the ledger');
    else {
      const differs = (what: string, stored: unknown, ledger: unknown) => {
        if (stored !== ledger) problems.push(`the stored ${what} differs from the ledger's`);
      };
      differs('patient', row.patientId, onLedger.patientId);
      differs('deployed model', row.modelId, onLedger.deploymentId);
      differs('model hash', row.modelHash, onLedger.modelHash);
      differs('actor', row.actorId, onLedger.actorId);
      differs('grant', row.grantId, onLedger.grantId);
      differs('input commitment', row.inputCommitment, onLedger.inputCommitment);
      differs('probability', row.probability, onLedger.output);
      differs('transaction id', row.ledgerTxId, onLedger.txId);
    }

    const deployment = await this.repo.deployment(row.modelId);
    const deployedOnLedger = await this.onLedger<ModelDeployment>('GetDeployment', row.modelId);
    if (!deployment || !deployedOnLedger) problems.push('the deployed model is missing');
    else if (deployment.modelHash !== deployedOnLedger.modelHash) {
      problems.push("the deployed model's stored hash differs from the ledger's");
    }

    let recomputed: number | null = null;
    if (!opened) {
      problems.push(
        (await this.patients.isErased(row.patientId))
          ? 'the stored inputs were erased with the patient’s data (the patient erased it), so the decision can no longer be recomputed'
          : "the stored inputs cannot be opened: erased with the patient's data key, or altered",
      );
    } else {
      if (onLedger && inputCommitment(opened.salt, opened.inputs) !== onLedger.inputCommitment) {
        problems.push('the stored inputs do not match the commitment on the ledger');
      }
      if (deployment && deployedOnLedger) {
        try {
          const model = await this.deployments.model(deployment);
          recomputed = model.probability(standardisedInputs(deployment.metadata, opened.inputs));
        } catch (e) {
          problems.push(
            e instanceof CustodiaError ? e.message : 'the stored inputs do not fit the model',
          );
        }
      }
      if (recomputed !== null && onLedger && recomputed !== onLedger.output) {
        // The values only to a reader of the patient: to an administrator, that they differ.
        problems.push(
          decision
            ? `the recomputed probability ${recomputed} differs from the ledger's output ${onLedger.output}`
            : "the recomputed probability differs from the ledger's output",
        );
      }
    }
    // The answer (its recomputed probability) comes from the inputs' record values: logged
    // before it leaves, as aiDecisions logs the inputs it shows.
    if (decision && opened) {
      await this.access.logRead(
        actor,
        decision,
        row.patientId,
        [opened.inputs],
        `Verification of AI decision ${row.id}`,
      );
    }
    return {
      decisionId: row.id,
      status: problems.length === 0 ? IntegrityStatus.VERIFIED : IntegrityStatus.MISMATCH,
      // A risk score is the patient's health data: an administrator, who checks decisions
      // without any access to the patient (and so unlogged), learns whether it verified, not it.
      recomputedProbability: decision ? recomputed : null,
      ledgerCommitment: onLedger?.inputCommitment ?? null,
      problems,
    };
  }

  /** The ledger's entry, or null when it holds none; an unreachable ledger throws. */
  private async onLedger<T>(fn: string, id: string): Promise<T | null> {
    try {
      return await this.ledger.evaluate<T>('decisions', fn, [id]);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }
}
