import { Field, ID, ObjectType } from '@nestjs/graphql';
import { JSONScalar } from '../common/scalars';

@ObjectType('PatientKey', {
  description: "A patient's device key on the ledger (EC P-256, ES256).",
})
export class PatientKeyModel {
  @Field(() => ID, { description: 'The RFC 7638 thumbprint of the key (the kid to sign with).' })
  id!: string;

  @Field(() => ID)
  patientId!: string;

  @Field(() => JSONScalar)
  publicKeyJwk!: Record<string, unknown>;

  @Field()
  createdAt!: Date;

  @Field()
  ledgerTxId!: string;
}
