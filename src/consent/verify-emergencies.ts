// verify-ledger's check of the break-glass declarations kept here: each row authenticates
// (its MAC, under a key only this API holds) and is the declaration the ledger recorded, for
// the same patient, clinician and window. The API already gives a forged or altered row no
// access; this says that one is there. Rows from before declarations were put on the ledger
// carry neither a MAC nor a ledger transaction and open nothing: counted, not reported.
import type { EmergencyRecord } from '@custodia/chaincode';
import type { QueryRows } from '../audit/verify';
import { NotFoundError } from '../common/errors';
import { RowAuthenticator } from '../records/crypto';
import { emergencyFields } from './emergency.service';

export interface EmergencyCheck {
  rows: number;
  /** Rows from before declarations were MAC'd and put on the ledger: they open nothing. */
  legacy: number;
  problems: string[];
}

interface EmergencyReader {
  evaluate<T>(contract: 'consent', fn: string, args: string[]): Promise<T>;
}

export async function verifyEmergencyRows(
  rows: QueryRows,
  ledger: EmergencyReader,
  authenticator?: RowAuthenticator,
): Promise<EmergencyCheck> {
  const found = (await rows(
    `SELECT id, patient_id, clinician_id, declared_at, expires_at, mac, ledger_tx_id
     FROM emergency_accesses ORDER BY declared_at`,
    [],
  )) as {
    id: string;
    patient_id: string;
    clinician_id: string;
    declared_at: Date;
    expires_at: Date;
    mac: Buffer | null;
    ledger_tx_id: string | null;
  }[];
  const check: EmergencyCheck = { rows: found.length, legacy: 0, problems: [] };
  for (const r of found) {
    // From before declarations were MAC'd: never on the ledger either. Any other row without
    // a MAC was stripped of it, or forged.
    if (r.mac === null && r.ledger_tx_id === null) {
      check.legacy++;
      continue;
    }
    if (r.mac === null) {
      check.problems.push(`emergency ${r.id}: its row carries no MAC (forged or altered)`);
      continue;
    }
    const fields = {
      id: r.id,
      patientId: r.patient_id,
      clinicianId: r.clinician_id,
      declaredAt: r.declared_at,
      expiresAt: r.expires_at,
    };
    if (authenticator && !authenticator.verify('emergency/v1', emergencyFields(fields), r.mac)) {
      check.problems.push(`emergency ${r.id}: its row fails authentication (forged or altered)`);
      continue;
    }
    let held: EmergencyRecord;
    try {
      held = await ledger.evaluate<EmergencyRecord>('consent', 'GetEmergency', [r.id]);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
      check.problems.push(`emergency ${r.id} is kept here, but the ledger never recorded it`);
      continue;
    }
    if (
      held.patientId !== r.patient_id ||
      held.clinicianId !== r.clinician_id ||
      Date.parse(held.declaredAt) !== r.declared_at.getTime() ||
      Date.parse(held.expiresAt) !== r.expires_at.getTime()
    ) {
      check.problems.push(
        `emergency ${r.id} differs from the ledger's declaration (patient, clinician or window)`,
      );
    }
  }
  return check;
}
