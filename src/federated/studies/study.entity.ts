import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { ModelPresetEnum, StrategyEnum } from './study.model';

@Entity('studies')
export class StudyEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('text')
  title!: string;

  @Column('text', { name: 'owner_id' })
  ownerId!: string;

  @Column('text')
  model!: ModelPresetEnum;

  @Column('text', { array: true })
  features!: string[];

  @Column('text')
  label!: string;

  @Column('text')
  strategy!: StrategyEnum;

  @Column('integer', { name: 'local_epochs' })
  localEpochs!: number;

  @Column('double precision', { name: 'learning_rate' })
  learningRate!: number;

  @Column('integer', { name: 'batch_size' })
  batchSize!: number;

  @Column('integer', { name: 'min_nodes' })
  minNodes!: number;

  @Column('integer', { name: 'round_deadline_ms' })
  roundDeadlineMs!: number;

  @Column('double precision', { name: 'clip_norm', nullable: true })
  clipNorm!: number | null;

  @Column('double precision', { name: 'noise_multiplier', nullable: true })
  noiseMultiplier!: number | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;
}

@Entity('training_nodes')
export class TrainingNodeEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('text', { name: 'organization_id' })
  organizationId!: string;

  @Column('text')
  name!: string;

  @Column('jsonb', { name: 'public_key' })
  publicKey!: { kty?: string; crv?: string; x?: string; y?: string };

  @Column('text', { name: 'key_thumbprint' })
  keyThumbprint!: string;

  @Column('text', { name: 'registered_by' })
  registeredBy!: string;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;
}
