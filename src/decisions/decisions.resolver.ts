import {
  Args,
  Context,
  ID,
  Int,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Actor, AnyRole, ConsentChecked, CurrentActor, Roles } from '../auth';
import { RequestLoader } from '../common/request-loader';
import { PatientModel } from '../patients/patient.model';
import { PatientsService } from '../patients';
import { Assessments } from './assessments.service';
import {
  AiDecisionModel,
  AiDecisionPageModel,
  DecisionVerificationModel,
  DeployedModelModel,
} from './decision.model';
import { DecisionVerifier } from './decision-verifier';
import { Deployments } from './deployments.service';

@Resolver(() => AiDecisionModel)
export class DecisionsResolver {
  constructor(
    private readonly deployments: Deployments,
    private readonly assessments: Assessments,
    private readonly verifier: DecisionVerifier,
    private readonly patients: PatientsService,
  ) {}

  @Roles('RESEARCHER', 'ADMIN')
  @Mutation(() => DeployedModelModel, {
    description:
      "Releases a COMPLETED run's final model for decisions (the study's owner, or an administrator); idempotent.",
  })
  deployModel(@CurrentActor() actor: Actor, @Args('runId', { type: () => ID }) runId: string) {
    return this.deployments.deploy(actor, runId);
  }

  /** Models, metrics and hashes, never records. */
  @Roles('PATIENT', 'CLINICIAN', 'RESEARCHER', 'ADMIN')
  @Query(() => [DeployedModelModel])
  deployedModels() {
    return this.deployments.list();
  }

  @Roles('CLINICIAN')
  @ConsentChecked()
  @Mutation(() => AiDecisionModel, {
    description:
      "A deployed model's risk for one patient, from their latest records; recorded on the ledger before it is returned.",
  })
  assessRisk(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('modelId', { type: () => ID }) modelId: string,
  ) {
    return this.assessments.assess(actor, patientId, modelId);
  }

  @Roles('PATIENT', 'CLINICIAN')
  @ConsentChecked()
  @Query(() => AiDecisionPageModel, {
    description: 'The AI decisions about a patient, newest first.',
  })
  aiDecisions(
    @CurrentActor() actor: Actor,
    @Args('patientId', { type: () => ID }) patientId: string,
    @Args('first', { type: () => Int, nullable: true }) first?: number | null,
    @Args('after', { type: () => String, nullable: true }) after?: string | null,
  ) {
    return this.assessments.list(actor, patientId, first, after);
  }

  @Roles('PATIENT', 'CLINICIAN', 'ADMIN')
  @Query(() => DecisionVerificationModel, {
    description:
      'Recomputes a decision from its stored inputs and deployed model, and checks its commitment and output against the ledger.',
  })
  verifyDecision(@CurrentActor() actor: Actor, @Args('id', { type: () => ID }) id: string) {
    return this.verifier.verify(actor, id);
  }

  @Roles('PATIENT')
  @Mutation(() => PatientModel, {
    description:
      'Allow or refuse AI risk assessments about you. Once you accept only signed consent, allowing them again needs your signature over choicePayload(AI_DECISIONS, true).',
  })
  async setAiDecisions(
    @CurrentActor() actor: Actor,
    @Args('allow') allow: boolean,
    @Args('signature', { type: () => String, nullable: true }) signature?: string | null,
  ) {
    const patientId = await this.assessments.setAllowed(actor, allow, signature ?? null);
    return this.patients.get(actor, patientId);
  }
}

@Resolver(() => PatientModel)
export class PatientAiDecisionsResolver {
  /** A list of patients (myPatients) reads their settings in one query, not one each. */
  private readonly allowedOf = new RequestLoader<string, boolean>((ids) =>
    this.assessments.allowedAll(ids),
  );

  constructor(private readonly assessments: Assessments) {}

  /** Whoever may see the patient may see this setting. */
  @AnyRole()
  @ResolveField(() => Boolean, {
    description: 'Whether clinicians may run AI risk assessments on this patient (default true).',
  })
  allowAiDecisions(@Parent() patient: PatientModel, @Context() request: object): Promise<boolean> {
    return this.allowedOf.load(request, patient.id);
  }
}
