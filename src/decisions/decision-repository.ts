// Every statement the decisions module runs against its tables (deployed_models,
// ai_decisions, ai_decision_settings), with typed rows.
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { isUuid } from '../common/ids';
import type { ModelMetadata } from './decision-inputs';

export interface DeploymentRow {
  id: string;
  runId: string;
  studyId: string;
  round: number;
  modelHash: string;
  weights: Buffer;
  metadata: ModelMetadata;
  auc: number | null;
  epsilon: number | null;
  deployedBy: string;
  ledgerTxId: string;
  deployedAt: Date;
}

export interface DecisionRow {
  id: string;
  patientId: string;
  modelId: string;
  modelHash: string;
  actorId: string;
  grantId: string;
  keyId: string;
  inputsSealed: Buffer;
  inputCommitment: string;
  probability: number;
  ledgerTxId: string;
  createdAt: Date;
}

export interface SettingRow {
  patientId: string;
  allow: boolean;
  mac: Buffer;
}

@Injectable()
export class DecisionRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  // --- deployments ---

  async insertDeployment(d: DeploymentRow): Promise<void> {
    await this.db.query(
      `INSERT INTO deployed_models (id, run_id, study_id, round, model_hash, weights, metadata,
         auc, epsilon, deployed_by, ledger_tx_id, deployed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        d.id,
        d.runId,
        d.studyId,
        d.round,
        d.modelHash,
        d.weights,
        JSON.stringify(d.metadata),
        d.auc,
        d.epsilon,
        d.deployedBy,
        d.ledgerTxId,
        d.deployedAt,
      ],
    );
  }

  async deployment(id: string): Promise<DeploymentRow | null> {
    if (!isUuid(id)) return null;
    const [row] = (await this.db.query(`SELECT * FROM deployed_models WHERE id = $1`, [
      id,
    ])) as DeploymentDbRow[];
    return row ? toDeployment(row) : null;
  }

  async deploymentOfRun(runId: string): Promise<DeploymentRow | null> {
    const [row] = (await this.db.query(`SELECT * FROM deployed_models WHERE run_id = $1`, [
      runId,
    ])) as DeploymentDbRow[];
    return row ? toDeployment(row) : null;
  }

  async deployments(): Promise<DeploymentRow[]> {
    const rows = (await this.db.query(
      `SELECT * FROM deployed_models ORDER BY deployed_at DESC, id`,
    )) as DeploymentDbRow[];
    return rows.map(toDeployment);
  }

  // --- decisions ---

  async insertDecision(d: DecisionRow): Promise<void> {
    await this.db.query(
      `INSERT INTO ai_decisions (id, patient_id, model_id, model_hash, actor_id, grant_id, key_id,
         inputs_sealed, input_commitment, probability, ledger_tx_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        d.id,
        d.patientId,
        d.modelId,
        d.modelHash,
        d.actorId,
        d.grantId,
        d.keyId,
        d.inputsSealed,
        d.inputCommitment,
        d.probability,
        d.ledgerTxId,
        d.createdAt,
      ],
    );
  }

  async decision(id: string): Promise<DecisionRow | null> {
    if (!isUuid(id)) return null;
    const [row] = (await this.db.query(`SELECT * FROM ai_decisions WHERE id = $1`, [
      id,
    ])) as DecisionDbRow[];
    return row ? toDecision(row) : null;
  }

  /** A page of the patient's decisions, newest first, after the keyset position given. */
  async decisionsOf(
    patientId: string,
    limit: number,
    after?: { createdAt: Date; id: string },
  ): Promise<DecisionRow[]> {
    const rows = (await this.db.query(
      `SELECT * FROM ai_decisions WHERE patient_id = $1
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [patientId, after?.createdAt ?? null, after?.id ?? null, limit],
    )) as DecisionDbRow[];
    return rows.map(toDecision);
  }

  // --- the patient's choice ---

  async setting(patientId: string): Promise<SettingRow | null> {
    const [row] = (await this.db.query(
      `SELECT patient_id, allow, mac FROM ai_decision_settings WHERE patient_id = $1`,
      [patientId],
    )) as { patient_id: string; allow: boolean; mac: Buffer }[];
    return row ? { patientId: row.patient_id, allow: row.allow, mac: row.mac } : null;
  }

  /** The settings rows of those among `patientIds` who have one, by patient id. */
  async settings(patientIds: readonly string[]): Promise<Map<string, SettingRow>> {
    if (!patientIds.length) return new Map();
    const rows = (await this.db.query(
      `SELECT patient_id, allow, mac FROM ai_decision_settings WHERE patient_id = ANY($1::uuid[])`,
      [patientIds],
    )) as { patient_id: string; allow: boolean; mac: Buffer }[];
    return new Map(
      rows.map((r) => [r.patient_id, { patientId: r.patient_id, allow: r.allow, mac: r.mac }]),
    );
  }

  async putSetting(s: SettingRow): Promise<void> {
    await this.db.query(
      `INSERT INTO ai_decision_settings (patient_id, allow, mac, updated_at)
       VALUES ($1, $2, $3, now())
       ON CONFLICT (patient_id) DO UPDATE SET allow = $2, mac = $3, updated_at = now()`,
      [s.patientId, s.allow, s.mac],
    );
  }
}

interface DeploymentDbRow {
  id: string;
  run_id: string;
  study_id: string;
  round: number;
  model_hash: string;
  weights: Buffer;
  metadata: ModelMetadata;
  auc: number | null;
  epsilon: number | null;
  deployed_by: string;
  ledger_tx_id: string;
  deployed_at: Date;
}

function toDeployment(r: DeploymentDbRow): DeploymentRow {
  return {
    id: r.id,
    runId: r.run_id,
    studyId: r.study_id,
    round: r.round,
    modelHash: r.model_hash.trim(),
    weights: r.weights,
    metadata: r.metadata,
    auc: r.auc,
    epsilon: r.epsilon,
    deployedBy: r.deployed_by,
    ledgerTxId: r.ledger_tx_id,
    deployedAt: r.deployed_at,
  };
}

interface DecisionDbRow {
  id: string;
  patient_id: string;
  model_id: string;
  model_hash: string;
  actor_id: string;
  grant_id: string;
  key_id: string;
  inputs_sealed: Buffer;
  input_commitment: string;
  probability: number;
  ledger_tx_id: string;
  created_at: Date;
}

function toDecision(r: DecisionDbRow): DecisionRow {
  return {
    id: r.id,
    patientId: r.patient_id,
    modelId: r.model_id,
    modelHash: r.model_hash.trim(),
    actorId: r.actor_id,
    grantId: r.grant_id,
    keyId: r.key_id,
    inputsSealed: r.inputs_sealed,
    inputCommitment: r.input_commitment.trim(),
    probability: r.probability,
    ledgerTxId: r.ledger_tx_id,
    createdAt: r.created_at,
  };
}
