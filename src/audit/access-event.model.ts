import { Field, ID, Int, ObjectType } from '@nestjs/graphql';
import type { Action } from '@custodia/chaincode/policy';
import { AccessDecisionEnum, ConsentActionEnum } from '../consent/consent.model';

@ObjectType('AccessEvent')
export class AccessEventModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  actorId!: string;

  @Field(() => ID)
  patientId!: string;

  @Field(() => [ID])
  recordIds!: string[];

  @Field(() => ConsentActionEnum)
  action!: Action;

  @Field({ description: 'TREATMENT, RESEARCH, or SELF for a patient reading their own records.' })
  purpose!: string;

  @Field(() => AccessDecisionEnum)
  decision!: 'PERMIT' | 'DENY';

  @Field(() => ID, { nullable: true, description: 'The grant that permitted the access.' })
  consentId!: string | null;

  @Field()
  breakGlass!: boolean;

  @Field(() => String, { nullable: true })
  reason!: string | null;

  @Field()
  at!: Date;

  @Field({ description: "This event's link in the access log's hash chain." })
  hash!: string;
}

@ObjectType('TrainingUse', {
  description: "The study, run and round a training node's use of the records belonged to.",
})
export class TrainingUseModel {
  @Field(() => ID)
  studyId!: string;

  @Field(() => ID)
  runId!: string;

  @Field(() => Int)
  round!: number;
}

@ObjectType('AccessEventPage')
export class AccessEventPageModel {
  @Field(() => [AccessEventModel])
  items!: AccessEventModel[];

  @Field(() => String, { nullable: true })
  nextCursor!: string | null;
}
