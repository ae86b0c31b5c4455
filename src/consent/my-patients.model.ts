import { Field, ObjectType } from '@nestjs/graphql';
import { PatientModel } from '../patients';
import { ConsentGrantModel } from './consent.model';

@ObjectType('PatientAccess', {
  description: "A clinician's view of one patient who gave them (or their organisation) access.",
})
export class PatientAccessModel {
  @Field(() => PatientModel)
  patient!: PatientModel;

  @Field(() => [ConsentGrantModel], {
    description: 'The active grants to the caller or their organisation.',
  })
  grants!: ConsentGrantModel[];

  @Field(() => Date, {
    nullable: true,
    description: "When the caller's running emergency access ends, if one runs.",
  })
  emergencyUntil!: Date | null;
}

@ObjectType('PatientAccessPage')
export class PatientAccessPageModel {
  @Field(() => [PatientAccessModel])
  items!: PatientAccessModel[];

  @Field(() => String, { nullable: true })
  nextCursor!: string | null;
}
