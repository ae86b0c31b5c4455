import { Field, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { JSONScalar } from '../common/scalars';

export enum SensitivityEnum {
  NORMAL = 'NORMAL',
  RESTRICTED = 'RESTRICTED',
}
registerEnumType(SensitivityEnum, { name: 'Sensitivity' });

export enum IntegrityStatus {
  /** The decrypted record hashes to the commitment anchored on the ledger. */
  VERIFIED = 'VERIFIED',
  /** It does not: the stored record or its anchor was altered. */
  MISMATCH = 'MISMATCH',
  /** Not anchored on the ledger yet. */
  PENDING = 'PENDING',
}
registerEnumType(IntegrityStatus, { name: 'IntegrityStatus' });

@ObjectType('HealthRecord')
export class HealthRecordModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  patientId!: string;

  @Field()
  resourceType!: string;

  @Field(() => String, { nullable: true })
  category!: string | null;

  @Field(() => SensitivityEnum)
  sensitivity!: SensitivityEnum;

  @Field(() => JSONScalar, { description: 'The FHIR R4 resource.' })
  resource!: Record<string, unknown>;

  @Field(() => Int)
  version!: number;

  @Field()
  contentHash!: string;

  @Field(() => IntegrityStatus)
  integrity!: IntegrityStatus;

  @Field(() => String, { nullable: true })
  ledgerTxId!: string | null;

  @Field()
  createdAt!: Date;

  @Field()
  updatedAt!: Date;
}

@ObjectType('RecordPage')
export class RecordPageModel {
  @Field(() => [HealthRecordModel])
  items!: HealthRecordModel[];

  @Field(() => String, { nullable: true, description: 'Pass as `after` for the next page.' })
  nextCursor!: string | null;
}

@InputType('CreateRecordInput')
export class CreateRecordInput {
  @Field(() => ID, { nullable: true, description: "Defaults to the caller's own patient id." })
  patientId?: string | null;

  @Field(() => JSONScalar, { description: 'A FHIR R4 resource.' })
  resource!: unknown;

  @Field(() => String, {
    nullable: true,
    description: "Derived from the resource's category when absent.",
  })
  category?: string | null;

  @Field(() => SensitivityEnum, {
    nullable: true,
    description: 'RESTRICTED when meta.security carries R or V; otherwise NORMAL unless given.',
  })
  sensitivity?: SensitivityEnum | null;
}

@ObjectType('IntegrityReport')
export class IntegrityReportModel {
  @Field(() => ID)
  recordId!: string;

  @Field(() => IntegrityStatus)
  status!: IntegrityStatus;

  @Field({ description: 'Recomputed from the stored (decrypted) record.' })
  storedHash!: string;

  @Field(() => Int, { description: 'The version stored as the current one.' })
  storedVersion!: number;

  @Field(() => String, {
    nullable: true,
    description:
      'What the ledger holds for this version, or for its latest version when storage holds an older one (rolled back): see ledgerVersion.',
  })
  ledgerHash!: string | null;

  @Field(() => String, { nullable: true })
  ledgerTxId!: string | null;

  @Field(() => Int, {
    nullable: true,
    description:
      'The version ledgerHash and ledgerTxId are of: storedVersion, or the later version the ledger anchored when the stored record was rolled back.',
  })
  ledgerVersion!: number | null;
}
