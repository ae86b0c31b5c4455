import { Field, Float, ID, ObjectType } from '@nestjs/graphql';
import { JSONScalar } from '../common/scalars';
import { IntegrityStatus } from '../records';

@ObjectType('DeployedModel', {
  description:
    "A completed run's final model, released for decisions; the deployment is on the ledger.",
})
export class DeployedModelModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  runId!: string;

  @Field(() => ID)
  studyId!: string;

  @Field({ description: 'SHA-256 of the model (float32 little-endian weights).' })
  modelHash!: string;

  @Field(() => [String], { description: 'LOINC codes of the inputs, in order.' })
  features!: string[];

  @Field({ description: 'SNOMED CT code of the condition whose probability the model answers.' })
  label!: string;

  @Field(() => Float, { nullable: true, description: "The last round's held-out AUC." })
  auc!: number | null;

  @Field(() => Float, {
    nullable: true,
    description:
      'Privacy spent by the run (δ = 1e-5), per node (a hospital’s whole update), not per patient.',
  })
  epsilon!: number | null;

  @Field()
  deployedAt!: Date;

  @Field({ description: 'The DeployModel transaction, linked to the run’s last RecordRound.' })
  ledgerTxId!: string;
}

@ObjectType('AiDecision', {
  description:
    'One AI risk assessment of one patient; its commitment and output are on the ledger.',
})
export class AiDecisionModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  patientId!: string;

  @Field(() => ID)
  modelId!: string;

  @Field()
  modelHash!: string;

  @Field(() => ID)
  actorId!: string;

  @Field(() => Float)
  probability!: number;

  @Field(() => JSONScalar, {
    description: 'The feature values used, with units and their source record ids and versions.',
  })
  inputs!: unknown;

  @Field({ description: 'sha256 of a salt and the canonical inputs, as on the ledger.' })
  inputCommitment!: string;

  @Field()
  ledgerTxId!: string;

  @Field()
  createdAt!: Date;
}

@ObjectType('AiDecisionPage')
export class AiDecisionPageModel {
  @Field(() => [AiDecisionModel])
  items!: AiDecisionModel[];

  @Field(() => String, { nullable: true })
  nextCursor!: string | null;
}

@ObjectType('DecisionVerification')
export class DecisionVerificationModel {
  @Field(() => ID)
  decisionId!: string;

  @Field(() => IntegrityStatus)
  status!: IntegrityStatus;

  @Field(() => Float, {
    nullable: true,
    description:
      'The probability recomputed from the stored inputs and the deployed model; null to an administrator (a risk score is the patient’s data) and when it cannot be recomputed.',
  })
  recomputedProbability!: number | null;

  @Field(() => String, { nullable: true })
  ledgerCommitment!: string | null;

  @Field(() => [String], { description: 'What differs; empty when VERIFIED.' })
  problems!: string[];
}
