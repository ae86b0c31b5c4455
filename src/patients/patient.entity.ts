import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

@Entity('organizations')
export class OrganizationEntity {
  @PrimaryColumn('text')
  id!: string;

  @Column('text')
  name!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

@Entity('patients')
export class PatientEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('text', { name: 'organization_id', nullable: true })
  organizationId!: string | null;

  @Column('bytea', { name: 'display_name_sealed', nullable: true })
  displayNameSealed!: Buffer | null;

  @Column('boolean', { name: 'allow_emergency_access', default: true })
  allowEmergencyAccess!: boolean;

  /** Authenticates allowEmergencyAccess (see PatientsService.emergencyAccessAllowed). */
  @Column('bytea', { name: 'settings_mac', nullable: true })
  settingsMac!: Buffer | null;

  /** The ledger time of the emergency-access setting copied here (null: never set since). */
  @Column('timestamptz', { name: 'emergency_setting_at', nullable: true })
  emergencySettingAt!: Date | null;

  /** Set when the patient erased their data (their keys are destroyed, records deleted). */
  @Column('timestamptz', { name: 'erased_at', nullable: true })
  erasedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/** Links an identity-provider subject (the token's `sub`) to the patient it is. */
@Entity('users')
export class UserEntity {
  @PrimaryColumn('text')
  subject!: string;

  @Column('uuid', { name: 'patient_id', nullable: true, unique: true })
  patientId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** Authenticates the link of `subject` to `patientId` (see PatientsService). */
  @Column('bytea', { nullable: true })
  mac!: Buffer | null;
}
