import { Field, ID, ObjectType } from '@nestjs/graphql';
import { RoleEnum, Role } from '../auth';

@ObjectType('Patient')
export class PatientModel {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true })
  displayName!: string | null;

  @Field(() => ID, { nullable: true })
  organizationId!: string | null;

  @Field()
  allowEmergencyAccess!: boolean;

  @Field()
  createdAt!: Date;
}

@ObjectType('Actor')
export class ActorModel {
  @Field(() => ID)
  id!: string;

  @Field(() => [RoleEnum])
  roles!: Role[];

  @Field(() => ID, { nullable: true })
  organizationId!: string | null;

  @Field(() => ID, { nullable: true, description: "The caller's patient profile, if any." })
  patientId!: string | null;
}
