import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { RecordFormat } from './crypto';

export type Sensitivity = 'NORMAL' | 'RESTRICTED';
export type AnchorState = 'PENDING' | 'ANCHORED';

/** One encrypted FHIR resource of a patient; the plaintext exists only in memory. */
@Entity('records')
export class RecordEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('uuid', { name: 'patient_id' })
  patientId!: string;

  @Column('integer')
  version!: number;

  @Column('text', { name: 'resource_type' })
  resourceType!: string;

  @Column('text', { nullable: true })
  category!: string | null;

  @Column('text')
  sensitivity!: Sensitivity;

  @Column('uuid', { name: 'key_id' })
  keyId!: string;

  @Column('bytea')
  iv!: Buffer;

  @Column('bytea', { name: 'auth_tag' })
  authTag!: Buffer;

  @Column('bytea')
  ciphertext!: Buffer;

  /** The format of the ciphertext's associated data: 2 binds the labels above. */
  @Column('smallint', { name: 'binding_version' })
  bindingVersion!: RecordFormat;

  @Column('char', { name: 'content_hash', length: 64 })
  contentHash!: string;

  /**
   * The format of the commitment anchored on the ledger. Stays 1 for rows anchored before
   * labels were bound (a ledger anchor is never rewritten), though they are re-sealed in 2.
   */
  @Column('smallint', { name: 'hash_version' })
  hashVersion!: RecordFormat;

  @Column('text', { name: 'anchor_state', default: 'PENDING' })
  anchorState!: AnchorState;

  /** What the ledger answered when anchoring; informative only, integrity asks the ledger. */
  @Column('char', { name: 'anchored_hash', length: 64, nullable: true })
  anchoredHash!: string | null;

  @Column('text', { name: 'ledger_tx_id', nullable: true })
  ledgerTxId!: string | null;

  /**
   * The search index (see records/search): the clinical date, and keyed digests of the main
   * code. Never evidence: every row a search finds is checked against its decrypted content.
   * Optional here because most reads do not load them.
   */
  @Column('timestamptz', { name: 'effective_at', nullable: true })
  effectiveAt?: Date | null;

  @Column('bytea', { name: 'code_digests', array: true, default: () => "'{}'" })
  codeDigests?: Buffer[];

  /** 0 until the index is filled in (rows written before search existed); 1 since. */
  @Column('smallint', { name: 'index_version', default: 0 })
  indexVersion?: number;

  // Set by the service in whole milliseconds, so that page cursors round-trip exactly.
  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;
}
