// The baseline's GraphQL types: the fields of the app's HealthRecord and RecordPage that the
// benchmark selects, with the same scalars (ID, String, enums, JSON, Int, DateTime).
import { Field, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { GraphQLJSON } from 'graphql-scalars';

export enum Sensitivity {
  NORMAL = 'NORMAL',
  RESTRICTED = 'RESTRICTED',
}
registerEnumType(Sensitivity, { name: 'Sensitivity' });

export enum IntegrityStatus {
  VERIFIED = 'VERIFIED',
  MISMATCH = 'MISMATCH',
  PENDING = 'PENDING',
}
registerEnumType(IntegrityStatus, { name: 'IntegrityStatus' });

@ObjectType('HealthRecord')
export class BaselineRecord {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  patientId!: string;

  @Field()
  resourceType!: string;

  @Field(() => String, { nullable: true })
  category!: string | null;

  @Field(() => Sensitivity)
  sensitivity!: Sensitivity;

  @Field(() => GraphQLJSON)
  resource!: Record<string, unknown>;

  @Field(() => Int)
  version!: number;

  @Field()
  contentHash!: string;

  @Field(() => IntegrityStatus)
  integrity!: IntegrityStatus;

  @Field()
  createdAt!: Date;
}

@ObjectType('RecordPage')
export class BaselineRecordPage {
  @Field(() => [BaselineRecord])
  items!: BaselineRecord[];

  @Field(() => String, { nullable: true })
  nextCursor!: string | null;
}
