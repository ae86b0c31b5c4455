import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

@Entity('data_keys')
export class DataKeyEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('uuid', { name: 'patient_id' })
  patientId!: string;

  @Column('bytea', { name: 'wrapped_key', nullable: true })
  wrappedKey!: Buffer | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'destroyed_at', nullable: true })
  destroyedAt!: Date | null;
}
