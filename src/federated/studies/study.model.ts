import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { JSONScalar } from '../../common/scalars';

export enum StrategyEnum {
  FEDAVG = 'FEDAVG',
  FEDPROX = 'FEDPROX',
  FEDADAM = 'FEDADAM',
  TRIMMED_MEAN = 'TRIMMED_MEAN',
}
registerEnumType(StrategyEnum, { name: 'Strategy' });

export enum ModelPresetEnum {
  LOGISTIC = 'LOGISTIC',
  MLP = 'MLP',
}
registerEnumType(ModelPresetEnum, {
  name: 'ModelPreset',
  description: 'The model a study trains: logistic regression or a small multilayer perceptron.',
});

@ObjectType('Study')
export class StudyModel {
  @Field(() => ID)
  id!: string;

  @Field()
  title!: string;

  @Field(() => ID)
  ownerId!: string;

  @Field(() => [String], { description: 'LOINC codes of the Observations used as features.' })
  features!: string[];

  @Field({ description: 'SNOMED CT code of the Condition predicted.' })
  label!: string;

  @Field(() => StrategyEnum)
  strategy!: StrategyEnum;

  @Field(() => ModelPresetEnum)
  model!: ModelPresetEnum;

  @Field(() => Int)
  localEpochs!: number;

  @Field(() => Float)
  learningRate!: number;

  @Field(() => Int)
  batchSize!: number;

  @Field(() => Int)
  minNodes!: number;

  @Field(() => Int, { description: 'How long a round waits for updates, in milliseconds.' })
  roundDeadlineMs!: number;

  @Field(() => Float, { nullable: true, description: 'L2 clip norm of each update (privacy).' })
  clipNorm!: number | null;

  @Field(() => Float, { nullable: true, description: 'Gaussian noise multiplier (privacy).' })
  noiseMultiplier!: number | null;

  @Field()
  createdAt!: Date;
}

@InputType('CreateStudyInput')
export class CreateStudyInput {
  @Field()
  title!: string;

  @Field(() => [String])
  features!: string[];

  @Field()
  label!: string;

  @Field(() => StrategyEnum, { nullable: true, description: 'Default FEDAVG.' })
  strategy?: StrategyEnum | null;

  @Field(() => Int, { nullable: true, description: 'Default 1.' })
  localEpochs?: number | null;

  @Field(() => Float, { nullable: true, description: 'Default 0.1.' })
  learningRate?: number | null;

  @Field(() => Int, { nullable: true, description: 'Default 2.' })
  minNodes?: number | null;

  @Field(() => Float, { nullable: true })
  clipNorm?: number | null;

  @Field(() => Float, { nullable: true })
  noiseMultiplier?: number | null;

  @Field(() => ModelPresetEnum, { nullable: true, description: 'Default LOGISTIC.' })
  model?: ModelPresetEnum | null;

  @Field(() => Int, { nullable: true, description: 'Default 32.' })
  batchSize?: number | null;

  @Field(() => Int, { nullable: true, description: 'Default 60000 (one minute).' })
  roundDeadlineMs?: number | null;
}

@ObjectType('TrainingNode')
export class TrainingNodeModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  organizationId!: string;

  @Field()
  name!: string;

  @Field({ description: 'RFC 7638 thumbprint of the public key its manifests are signed with.' })
  keyThumbprint!: string;

  @Field()
  createdAt!: Date;
}

@InputType('RegisterTrainingNodeInput')
export class RegisterTrainingNodeInput {
  @Field(() => ID)
  organizationId!: string;

  @Field()
  name!: string;

  @Field(() => JSONScalar, { description: 'The node public key as a JWK (EC P-256, for ES256).' })
  publicKeyJwk!: unknown;
}
