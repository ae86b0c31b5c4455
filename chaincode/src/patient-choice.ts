// A patient's yes/no choice held on the ledger, such as whether AI decisions may be made about
// them or whether clinicians may break the glass: one state entry per patient and choice (absent:
// allowed), set by a transaction that emits it as its event.
import { Context } from 'fabric-contract-api';
import { emit, getJson, key, putJson, txTime } from './state';
import * as v from './validation';

export interface PatientChoice {
  patientId: string;
  allow: boolean;
  txId: string;
  setAt: string;
}

/** Records `{patientId, allow}` (JSON) under `keyType` and emits it as `eventName`. */
export async function recordChoice(
  ctx: Context,
  settingJson: string,
  keyType: string,
  eventName: string,
): Promise<string> {
  const d = v.parseJson(settingJson, 'setting');
  v.only(d, 'setting', ['patientId', 'allow']);
  const entry: PatientChoice = {
    patientId: v.id(d.patientId, 'setting.patientId'),
    allow: v.bool(d.allow, 'setting.allow'),
    txId: ctx.stub.getTxID(),
    setAt: txTime(ctx),
  };
  await putJson(ctx, key(ctx, keyType, [entry.patientId]), entry);
  emit(ctx, eventName, entry);
  return JSON.stringify(entry);
}

/** The patient's choice under `keyType`, if they ever made one. */
export function choiceOf(
  ctx: Context,
  keyType: string,
  patientId: string,
): Promise<PatientChoice | undefined> {
  return getJson<PatientChoice>(ctx, key(ctx, keyType, [patientId]));
}
