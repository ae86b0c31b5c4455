// Small helpers over the chaincode stub: JSON state under composite keys, the transaction's
// own timestamp (the only clock), the caller's organisation and the transaction's one event.
import { Context } from 'fabric-contract-api';
import * as v from './validation';
import { ChaincodeError } from './validation';

export const KEYS = {
  grant: 'custodia.grant',
  grantByPatient: 'custodia.grant~patient',
  grantByGrantee: 'custodia.grant~grantee',
  anchor: 'custodia.anchor',
  anchorVersion: 'custodia.anchor~version',
  round: 'custodia.round',
  auditHead: 'custodia.audit',
  emergency: 'custodia.emergency',
  keyring: 'custodia.keyring',
  emergencySetting: 'custodia.emergency~setting',
  study: 'custodia.study',
  /** Per organisation: it has registered a study of its own (legacy registration is closed). */
  studyRegistrar: 'custodia.study~registrar',
} as const;

/** Index entries hold no data: the key is the information. */
const MARKER = Buffer.from([0]);

export function key(ctx: Context, type: string, attributes: string[]): string {
  return ctx.stub.createCompositeKey(type, attributes);
}

export async function getJson<T>(ctx: Context, k: string): Promise<T | undefined> {
  const bytes = await ctx.stub.getState(k);
  return bytes && bytes.length ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : undefined;
}

export async function putJson(ctx: Context, k: string, value: unknown): Promise<void> {
  await ctx.stub.putState(k, Buffer.from(JSON.stringify(value), 'utf8'));
}

export async function putIndex(ctx: Context, type: string, attributes: string[]): Promise<void> {
  await ctx.stub.putState(key(ctx, type, attributes), MARKER);
}

/** Keys under a partial composite key, in key order. */
export async function indexKeys(
  ctx: Context,
  type: string,
  attributes: string[],
): Promise<string[][]> {
  const out: string[][] = [];
  const iterator = await ctx.stub.getStateByPartialCompositeKey(type, attributes);
  try {
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      out.push(ctx.stub.splitCompositeKey(r.value.key).attributes);
    }
  } finally {
    await iterator.close();
  }
  return out;
}

/** Values under a partial composite key, in key order. */
export async function values<T>(ctx: Context, type: string, attributes: string[]): Promise<T[]> {
  const out: T[] = [];
  const iterator = await ctx.stub.getStateByPartialCompositeKey(type, attributes);
  try {
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      out.push(JSON.parse(Buffer.from(r.value.value).toString('utf8')) as T);
    }
  } finally {
    await iterator.close();
  }
  return out;
}

/** At most this many values per page of a paged listing. */
export const MAX_PAGE = 1000;

/**
 * One page of values under a partial composite key, in key order, and the bookmark to pass
 * for the next page ('' when this page is the last), as a transaction's arguments ask for it:
 * pageSize 1–MAX_PAGE, bookmark '' for the first page. Paged queries run in evaluated
 * (read-only) transactions only, as Fabric requires.
 */
export async function valuesPage<T>(
  ctx: Context,
  type: string,
  pageSize: string,
  bookmark: string,
): Promise<{ values: T[]; bookmark: string }> {
  const size = v.positiveInt(pageSize, 'pageSize');
  if (size > MAX_PAGE) {
    throw new ChaincodeError('INVALID_ARGUMENT', `pageSize must be at most ${MAX_PAGE}`);
  }
  if (typeof bookmark !== 'string') {
    throw new ChaincodeError('INVALID_ARGUMENT', 'bookmark must be a string');
  }
  const { iterator, metadata } = await ctx.stub.getStateByPartialCompositeKeyWithPagination(
    type,
    [],
    size,
    bookmark,
  );
  const out: T[] = [];
  try {
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
      out.push(JSON.parse(Buffer.from(r.value.value).toString('utf8')) as T);
    }
  } finally {
    await iterator.close();
  }
  return { values: out, bookmark: out.length < size ? '' : (metadata?.bookmark ?? '') };
}

/** The transaction timestamp as an ISO instant: the chaincode has no other clock. */
export function txTime(ctx: Context): string {
  const ts = ctx.stub.getTxTimestamp();
  const millis = Number(ts.seconds.toString()) * 1000 + Math.floor(ts.nanos / 1e6);
  return new Date(millis).toISOString();
}

export function caller(ctx: Context): string {
  return ctx.clientIdentity.getMSPID();
}

/** Fabric keeps one event per transaction: each state-changing transaction sets exactly one. */
export function emit(ctx: Context, name: string, payload: unknown): void {
  ctx.stub.setEvent(name, Buffer.from(JSON.stringify(payload), 'utf8'));
}

/** Zero-padded so that composite keys sort numerically. */
export function pad(n: number): string {
  return String(n).padStart(10, '0');
}
