// Erasure ("right to be forgotten") by crypto-shredding: every grant of the patient is
// revoked on the ledger, their data keys are destroyed and their records deleted. What the
// ledger keeps are salted hashes whose salts are gone with the ciphertexts, so they reveal
// nothing; the access log keeps its chain, which holds ids and reasons sealed under the
// destroyed key (the hashes cover the ciphertext, so the chain stays whole).
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { GrantRecord } from '@custodia/chaincode';
import { DataSource } from 'typeorm';
import { Actor } from '../auth';
import { BadUserInputError } from '../common/errors';
import { ConsentService } from '../consent';
import { Ledger, LEDGER } from '../ledger';
import { PatientsService } from '../patients';
import { DataKeyRing } from '../records/crypto';

@Injectable()
export class ErasureService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly patients: PatientsService,
    private readonly consents: ConsentService,
    private readonly keys: DataKeyRing,
  ) {}

  async eraseMyData(actor: Actor, confirm: boolean): Promise<boolean> {
    if (!confirm) {
      throw new BadUserInputError(
        'Erasure cannot be undone: pass confirm: true to erase all your records and consents.',
        'confirm',
      );
    }
    const patientId = await this.patients.requirePatientId(actor);
    // Consents first, on the ledger (the source of truth). If the ledger fails half-way,
    // nothing else has changed and a retry revokes the rest.
    await this.revokeAll(patientId);
    await this.db.transaction((m) =>
      erasePatientRows((text, params) => m.query(text, params), patientId),
    );
    this.keys.forgetPatient(patientId);
    this.patients.forget(actor.id);
    // A grant the patient made while this ran, after the first look: revoked now that the
    // profile is marked erased. One landing after this look sees the mark and revokes itself
    // (ConsentService.grant).
    await this.revokeAll(patientId);
    return true;
  }

  /** Revokes every grant of the patient the ledger holds unrevoked. */
  private async revokeAll(patientId: string): Promise<void> {
    const grants = await this.ledger.evaluate<GrantRecord[]>('consent', 'ListConsentsByPatient', [
      patientId,
    ]);
    for (const g of grants.filter((x) => x.status !== 'REVOKED')) {
      await this.consents.revokeStanding(g.id);
    }
  }
}

/** Runs one SQL statement: a TypeORM manager's `query`, or a pg client's. */
export type Sql = (text: string, params: unknown[]) => Promise<unknown>;

/**
 * Erasure's database part, inside the caller's transaction: the data keys destroyed
 * (crypto-shredding), the records deleted, the profile emptied and marked erased, emergencies
 * dropped, accounts unlinked. It touches no process's memory: the process that erases forgets
 * the patient after it commits, any other when it next meets them (PatientErasedError).
 */
export async function erasePatientRows(sql: Sql, patientId: string): Promise<void> {
  // Keys, then records, then the patient: the order every writer locks them in (see
  // DataKeyRing.liveKey), so that a write under way is waited for, never deadlocked with.
  const shred = async () => {
    await sql(
      `UPDATE data_keys SET wrapped_key = NULL, destroyed_at = now()
       WHERE patient_id = $1 AND destroyed_at IS NULL`,
      [patientId],
    );
    await sql('DELETE FROM records WHERE patient_id = $1', [patientId]);
  };
  await shred();
  await sql(
    `UPDATE patients SET display_name_sealed = NULL, allow_emergency_access = false,
       erased_at = now(), updated_at = now() WHERE id = $1`,
    [patientId],
  );
  // A first write that made the patient's first key (holding the patient's row, which the
  // update above waited for) committed after the statements above had looked: shredded now.
  // None can follow: a new key needs the patient's row, and the row now says erased.
  await shred();
  await sql('DELETE FROM emergency_accesses WHERE patient_id = $1', [patientId]);
  await sql('UPDATE users SET patient_id = NULL WHERE patient_id = $1', [patientId]);
}
