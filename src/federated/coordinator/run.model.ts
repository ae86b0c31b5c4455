import { Field, Float, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { JSONScalar } from '../../common/scalars';

export enum RunStatus {
  PENDING = 'PENDING',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(RunStatus, { name: 'RunStatus' });

export enum UpdateStatus {
  ACCEPTED = 'ACCEPTED',
  REJECTED = 'REJECTED',
}
registerEnumType(UpdateStatus, { name: 'UpdateStatus' });

@ObjectType('RoundMetrics')
export class RoundMetricsModel {
  @Field(() => Int)
  round!: number;

  @Field(() => Float, {
    nullable: true,
    description: "Nodes' held-out loss, weighted by examples.",
  })
  loss!: number | null;

  @Field(() => Float, { nullable: true })
  accuracy!: number | null;

  @Field(() => Float, { nullable: true })
  auc!: number | null;

  @Field(() => Int)
  numContributors!: number;

  @Field(() => Int)
  numUpdates!: number;

  @Field(() => Float, {
    nullable: true,
    description:
      'Privacy spent by the run so far (ε at δ = 1e-5), per node (a hospital’s whole update), not per patient; null without differential privacy.',
  })
  epsilon!: number | null;
}

@ObjectType('ModelUpdateInfo')
export class ModelUpdateInfoModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  nodeId!: string;

  @Field(() => Int)
  round!: number;

  @Field(() => UpdateStatus)
  status!: UpdateStatus;

  @Field(() => String, { nullable: true, description: 'Why an update was rejected.' })
  reason!: string | null;

  @Field(() => Int)
  numExamples!: number;
}

@ObjectType('TrainingRun')
export class TrainingRunModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  studyId!: string;

  @Field(() => RunStatus)
  status!: RunStatus;

  @Field(() => Int, { description: 'Rounds to train.' })
  rounds!: number;

  @Field(() => Int, { description: 'The round open now (or the last one, once finished).' })
  currentRound!: number;

  @Field(() => String, { nullable: true, description: 'SHA-256 of the latest global model.' })
  modelHash!: string | null;

  @Field(() => [String], { description: 'Ledger transactions that recorded each round.' })
  provenanceTxIds!: string[];

  @Field(() => String, { nullable: true, description: 'Why the run failed, if it did.' })
  failure!: string | null;
}

@ObjectType('OpenRound', {
  description: 'A round waiting for updates, as a training node sees it.',
})
export class OpenRoundModel {
  @Field(() => ID)
  runId!: string;

  @Field(() => Int)
  round!: number;

  @Field(() => ID)
  studyId!: string;

  @Field()
  deadlineAt!: Date;

  @Field({
    description:
      'Whether the calling node has an update accepted for it. After a rejection (a contributor revoked consent before aggregation, say) it is false again: the node may train and send another.',
  })
  submitted!: boolean;

  @Field(() => JSONScalar, {
    description: "The strategy's settings for local training, e.g. FedProx's {mu}.",
  })
  clientConfig!: Record<string, number>;
}
