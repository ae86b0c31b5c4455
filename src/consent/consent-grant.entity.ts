import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The consent projection: a copy of the ledger's grants, for fast decisions. */
@Entity('consent_grants')
export class ConsentGrantEntity {
  @PrimaryColumn('text')
  id!: string;

  @Column('text', { name: 'patient_id' })
  patientId!: string;

  @Column('text', { name: 'grantee_type' })
  granteeType!: string;

  @Column('text', { name: 'grantee_id' })
  granteeId!: string;

  @Column('text')
  purpose!: string;

  @Column('text', { array: true })
  actions!: string[];

  @Column('text', { name: 'resource_types', array: true })
  resourceTypes!: string[];

  @Column('text', { array: true })
  categories!: string[];

  @Column('boolean', { name: 'include_restricted' })
  includeRestricted!: boolean;

  @Column('timestamptz', { name: 'valid_from' })
  validFrom!: Date;

  @Column('timestamptz', { name: 'valid_until', nullable: true })
  validUntil!: Date | null;

  @Column('text')
  status!: string;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  @Column('text', { name: 'ledger_tx_id' })
  ledgerTxId!: string;

  @Column('text', { name: 'revoked_tx_id', nullable: true })
  revokedTxId!: string | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  /** Signed by one of the patient's registered keys, as the chaincode verified. */
  @Column('boolean', { name: 'patient_signed', default: false })
  patientSigned!: boolean;

  /** Authenticates the row as the ledger's (see GrantAuthenticity); null until reconciled. */
  @Column('bytea', { nullable: true })
  mac!: Buffer | null;
}

@Entity('emergency_accesses')
export class EmergencyAccessEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('uuid', { name: 'patient_id' })
  patientId!: string;

  @Column('text', { name: 'clinician_id' })
  clinicianId!: string;

  /** Plaintext: only on rows declared before reasons were sealed, until start-up seals them. */
  @Column('text', { nullable: true })
  reason!: string | null;

  /** The reason sealed under the patient's data key `keyId` (see EmergencyService). */
  @Column('bytea', { name: 'reason_sealed', nullable: true })
  reasonSealed!: Buffer | null;

  @Column('uuid', { name: 'key_id', nullable: true })
  keyId!: string | null;

  @Column('timestamptz', { name: 'declared_at' })
  declaredAt!: Date;

  @Column('timestamptz', { name: 'expires_at' })
  expiresAt!: Date;

  /** The ledger transaction that declared the emergency. */
  @Column('text', { name: 'ledger_tx_id', nullable: true })
  ledgerTxId!: string | null;

  /** Authenticates the row as the ledger's declaration. */
  @Column('bytea', { nullable: true })
  mac!: Buffer | null;
}
