import { Field, ID, InputType, ObjectType, registerEnumType } from '@nestjs/graphql';
import {
  ACTIONS,
  Action,
  GRANTEE_TYPES,
  GranteeType,
  GrantStatus,
  PURPOSES,
  Purpose,
} from '@custodia/chaincode/policy';

const enumOf = <T extends string>(values: readonly T[]) =>
  Object.fromEntries(values.map((v) => [v, v])) as { [K in T]: K };

export const GranteeTypeEnum = enumOf(GRANTEE_TYPES);
export const ConsentPurposeEnum = enumOf(PURPOSES);
export const ConsentActionEnum = enumOf(ACTIONS);
/**
 * A grant's status as listed: the rule's statuses, and SUSPENDED for a grant on the ledger, not
 * revoked nor expired, that is not in force because it is unsigned and its patient accepts only
 * signed grants (it is ACTIVE again if they turn signed-only consent off).
 */
export type ListedGrantStatus = GrantStatus | 'SUSPENDED';
export const ConsentStatusEnum = enumOf<ListedGrantStatus>([
  'ACTIVE',
  'REVOKED',
  'EXPIRED',
  'SUSPENDED',
]);
export const AccessDecisionEnum = enumOf(['PERMIT', 'DENY'] as const);
registerEnumType(GranteeTypeEnum, { name: 'GranteeType' });
registerEnumType(ConsentPurposeEnum, { name: 'ConsentPurpose' });
registerEnumType(ConsentActionEnum, { name: 'ConsentAction' });
registerEnumType(ConsentStatusEnum, {
  name: 'ConsentStatus',
  valuesMap: {
    SUSPENDED: {
      description:
        'Not revoked nor expired, but not in force: an unsigned grant of a patient who accepts only grants they signed. ACTIVE again if they turn signed-only consent off.',
    },
  },
});
registerEnumType(AccessDecisionEnum, { name: 'AccessDecision' });

@ObjectType('Grantee')
export class GranteeModel {
  @Field(() => GranteeTypeEnum)
  type!: GranteeType;

  @Field(() => ID)
  id!: string;
}

@ObjectType('ConsentGrant')
export class ConsentGrantModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  patientId!: string;

  @Field(() => GranteeModel)
  grantee!: GranteeModel;

  @Field(() => ConsentPurposeEnum)
  purpose!: Purpose;

  @Field(() => [ConsentActionEnum])
  actions!: Action[];

  @Field(() => [String])
  resourceTypes!: string[];

  @Field(() => [String])
  categories!: string[];

  @Field()
  includeRestricted!: boolean;

  @Field()
  validFrom!: Date;

  @Field(() => Date, { nullable: true })
  validUntil!: Date | null;

  @Field(() => ConsentStatusEnum)
  status!: ListedGrantStatus;

  @Field(() => Date, { nullable: true })
  revokedAt!: Date | null;

  @Field({ description: 'The ledger transaction that recorded the grant.' })
  ledgerTxId!: string;

  @Field()
  createdAt!: Date;

  @Field({
    description: "Signed with one of the patient's registered keys, verified by the chaincode.",
  })
  patientSigned!: boolean;
}

@InputType('GrantConsentInput')
export class GrantConsentInput {
  @Field(() => GranteeTypeEnum)
  granteeType!: GranteeType;

  @Field(() => ID)
  granteeId!: string;

  @Field(() => ConsentPurposeEnum)
  purpose!: Purpose;

  @Field(() => [ConsentActionEnum])
  actions!: Action[];

  @Field(() => [String], { nullable: true, description: 'Empty or absent: every resource type.' })
  resourceTypes?: string[] | null;

  @Field(() => [String], { nullable: true, description: 'Empty or absent: every category.' })
  categories?: string[] | null;

  @Field(() => Boolean, { nullable: true, description: 'Also RESTRICTED records (default false).' })
  includeRestricted?: boolean | null;

  @Field(() => Date, { nullable: true, description: 'Default: now.' })
  validFrom?: Date | null;

  @Field(() => Date, { nullable: true, description: 'Default: until revoked.' })
  validUntil?: Date | null;

  @Field(() => ID, {
    nullable: true,
    description: 'Client-chosen grant id (required with a signature).',
  })
  id?: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      'Compact JWS (ES256, detached payload) over consentPayload(input), by a registered patient key.',
  })
  signature?: string | null;
}

@ObjectType('EmergencyAccess')
export class EmergencyAccessModel {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  patientId!: string;

  @Field(() => ID)
  clinicianId!: string;

  @Field()
  reason!: string;

  @Field()
  expiresAt!: Date;
}
