// A patient's yes/no choice held on the ledger, such as whether AI decisions may be made about
// them or whether clinicians may break the glass: one state entry per patient and choice (absent:
// allowed), set by a transaction that emits it as its event.
import { Context } from 'fabric-contract-api';
import { loadKeyring, optionalSignature, requireSignedChange } from './keys.contract';
import { ChoicePeriod, offPeriodsOf } from './policy';
import { choicePayload, type PatientChoiceName } from './signed-consent';
import { emit, getJson, key, putJson, txTime } from './state';
import * as v from './validation';

export interface PatientChoice {
  patientId: string;
  allow: boolean;
  txId: string;
  setAt: string;
  /**
   * When the patient said no, by the transactions that turned the choice off and back on
   * (`until` null while it is off): what an audit needs to tell whether something the choice
   * governs was allowed when it happened. Absent on entries written before it was kept
   * (`offPeriodsOf` reads those).
   */
  offPeriods?: ChoicePeriod[];
}

/**
 * Records `{patientId, allow, signature?}` (JSON) under `keyType` and emits it as `eventName`.
 * Turning a choice off needs no signature (it only keeps others out, as a revocation). Turning
 * it back on lets others in, as a grant does: for a patient who accepts only signed consent it
 * needs their signature over choicePayload(…, allow true, times turned off), whoever submits
 * it, so that no operator can reopen break-glass or AI decisions behind them.
 */
export async function recordChoice(
  ctx: Context,
  settingJson: string,
  keyType: string,
  eventName: string,
  choice: PatientChoiceName,
): Promise<string> {
  const d = v.parseJson(settingJson, 'setting');
  v.only(d, 'setting', ['patientId', 'allow', 'signature']);
  const patientId = v.id(d.patientId, 'setting.patientId');
  const allow = v.bool(d.allow, 'setting.allow');
  const signature = optionalSignature(d.signature);
  const k = key(ctx, keyType, [patientId]);
  const before = await getJson<PatientChoice>(ctx, k);
  const at = txTime(ctx);
  const periods = before ? [...offPeriodsOf(before)] : [];
  const open = periods.length > 0 && periods[periods.length - 1].until === null;
  if (allow && open) {
    const ring = await loadKeyring(ctx, patientId);
    if (ring.requireSignedConsent) {
      await requireSignedChange(
        signature,
        (version) => choicePayload(patientId, choice, true, version),
        periods.length,
        ring,
        `a patient who accepts only signed consent turns ${choice} back on`,
      );
    }
  }
  if (!allow && !open) periods.push({ from: at, until: null });
  else if (allow && open)
    periods[periods.length - 1] = { ...periods[periods.length - 1], until: at };
  const entry: PatientChoice = {
    patientId,
    allow,
    txId: ctx.stub.getTxID(),
    setAt: at,
    offPeriods: periods,
  };
  await putJson(ctx, k, entry);
  emit(ctx, eventName, entry);
  return JSON.stringify(entry);
}

/** The patient's choice under `keyType` as a transaction answers it: allowed, with no txId, when never made. */
export async function choiceAnswer(
  ctx: Context,
  keyType: string,
  patientId: string,
): Promise<string> {
  const id = v.id(patientId, 'patientId');
  const setting = await choiceOf(ctx, keyType, id);
  return JSON.stringify(setting ?? { patientId: id, allow: true, txId: null, setAt: null });
}

/** The patient's choice under `keyType`, if they ever made one. */
export function choiceOf(
  ctx: Context,
  keyType: string,
  patientId: string,
): Promise<PatientChoice | undefined> {
  return getJson<PatientChoice>(ctx, key(ctx, keyType, [patientId]));
}
