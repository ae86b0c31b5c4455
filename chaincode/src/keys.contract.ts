// Patients' device keys and their signed-only setting: what lets a patient, rather than the
// organisation that submits transactions for them, be the author of their grants. A patient's
// first key needs no signature; every later key change, and turning signed-only off, must be
// signed by a key already registered over bytes naming the current version (no replay).
import { Context, Contract, Info, Returns, Transaction } from 'fabric-contract-api';
import {
  GrantTerms,
  keyIdOf,
  keyPayload,
  parsePublicKeyJwk,
  PublicKeyJwk,
  consentPayload,
  revocationPayload,
  settingPayload,
  verifyDetachedJws,
} from './signed-consent';
import { caller, emit, getJson, key, KEYS, putJson, txTime, valuesPage } from './state';
import * as v from './validation';
import { ChaincodeError } from './validation';

/** One registered key of a patient. */
export interface PatientKeyRecord {
  id: string;
  publicKeyJwk: PublicKeyJwk;
  createdAt: string;
  txId: string;
  writtenBy: string;
}

/** Everything the ledger holds about a patient's keys: keyed by pseudonymous id only. */
export interface PatientKeyring {
  patientId: string;
  /**
   * The organisation (MSP) the patient registered with, the one that may register their first
   * key (RegisterPatientHome). Absent for patients registered before it was kept: their first
   * key may come through any organisation, which then becomes their home.
   */
  homeOrganization?: string;
  keys: PatientKeyRecord[];
  /** Key changes so far: a key payload names it, so its signature is good once. */
  keysVersion: number;
  requireSignedConsent: boolean;
  /** Setting changes so far: a setting payload names it. */
  settingVersion: number;
  /**
   * When signed-only consent was on, by the transactions that turned it on and off (`until`
   * null while it is on): what an audit needs to tell an access under an unsigned grant while
   * the patient accepted only signed ones. Absent on keyrings written before it was kept.
   */
  signedOnlyPeriods?: SignedOnlyPeriod[];
  txId: string;
}

export interface SignedOnlyPeriod {
  from: string;
  until: string | null;
}

export const KEY_EVENTS = {
  home: 'PatientHomeRegistered',
  registered: 'PatientKeyRegistered',
  removed: 'PatientKeyRemoved',
  setting: 'SignedConsentSet',
} as const;

/** At most this many keys per patient (each grant check may try them all). */
export const MAX_KEYS = 10;

const empty = (patientId: string): PatientKeyring => ({
  patientId,
  keys: [],
  keysVersion: 0,
  requireSignedConsent: false,
  settingVersion: 0,
  txId: '',
});

export async function loadKeyring(ctx: Context, patientId: string): Promise<PatientKeyring> {
  return (
    (await getJson<PatientKeyring>(ctx, key(ctx, KEYS.keyring, [patientId]))) ?? empty(patientId)
  );
}

/**
 * Who signed a grant: the id of the patient's key that signed its terms, or null when it is
 * unsigned (refused outright for a signed-only patient, whoever submits it).
 */
export async function grantSigner(
  ctx: Context,
  terms: GrantTerms,
  signature: unknown,
): Promise<string | null> {
  const ring = await loadKeyring(ctx, terms.patientId);
  if (signature === undefined || signature === null) {
    if (ring.requireSignedConsent) {
      throw new ChaincodeError(
        'FORBIDDEN',
        `patient ${terms.patientId} accepts only grants they signed; this one carries no signature`,
      );
    }
    return null;
  }
  return verifyDetachedJws(signature, consentPayload(terms), ring.keys, 'grant.signature');
}

/** The key that signed the revocation of a patient's grant (refused with the reason if none). */
export async function revocationSigner(
  ctx: Context,
  patientId: string,
  grantId: string,
  signature: unknown,
): Promise<string> {
  const ring = await loadKeyring(ctx, patientId);
  return verifyDetachedJws(signature, revocationPayload(patientId, grantId), ring.keys);
}

/** A signature argument: '' stands for none (chaincode arguments are strings). */
export function optionalSignature(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') {
    throw new ChaincodeError('INVALID_ARGUMENT', 'signature must be a string');
  }
  return value;
}

/** How many earlier versions a refused signature is tried against, to say it is stale. */
const STALE_VERSIONS_TRIED = 8;

/**
 * Verifies a change that only a registered key may authorise, over `payloadAt(version)`:
 * refused with INVALID_ARGUMENT naming the change when unsigned, and with the verifier's reason
 * when the signature is bad — or, when it verifies over one of the few versions before, saying
 * that it was made for a version since changed (a replay, or a payload asked for too early).
 */
export async function requireSignedChange(
  sig: string | null,
  payloadAt: (version: number) => string,
  version: number,
  ring: PatientKeyring,
  change: string,
): Promise<void> {
  if (!sig) {
    throw new ChaincodeError(
      'INVALID_ARGUMENT',
      `signature is required: ${change} with a signature by a registered key`,
    );
  }
  try {
    await verifyDetachedJws(sig, payloadAt(version), ring.keys);
  } catch (refused) {
    for (let v = version - 1; v >= Math.max(0, version - STALE_VERSIONS_TRIED); v--) {
      const stale = await verifyDetachedJws(sig, payloadAt(v), ring.keys).then(
        () => true,
        () => false,
      );
      if (stale) {
        throw new ChaincodeError(
          'INVALID_ARGUMENT',
          `signature was made over version ${v} of what it changes, which is at version ${version} now: a signature is good for one change; ask for the payload again and sign that`,
        );
      }
    }
    throw refused;
  }
}

/** Writes a patient's keyring and its one event; returns what the transaction answers. */
async function saveKeyring(ctx: Context, next: PatientKeyring, event: string): Promise<string> {
  await putJson(ctx, key(ctx, KEYS.keyring, [next.patientId]), next);
  emit(ctx, event, next);
  return JSON.stringify(next);
}

@Info({ title: 'keys', description: "Patients' device keys and signed-only consent" })
export class KeysContract extends Contract {
  constructor() {
    super('keys');
  }

  /**
   * Records the organisation a new patient registers with (the caller's MSP) as their home:
   * only it may then register their first key, which needs no signature. Without it, any
   * organisation that learnt the patient's pseudonymous id (say, by admitting them) could bind
   * a key of its own first and sign grants as the patient, locking the patient out. The same
   * organisation again changes nothing; another is refused.
   */
  @Transaction()
  @Returns('string')
  async RegisterPatientHome(ctx: Context, patientId: string): Promise<string> {
    const pid = v.id(patientId, 'patientId');
    const ring = await loadKeyring(ctx, pid);
    const me = caller(ctx);
    if (ring.homeOrganization === me) return JSON.stringify(ring);
    if (ring.homeOrganization !== undefined || ring.keysVersion > 0) {
      throw new ChaincodeError(
        'CONFLICT',
        `patient ${pid} is registered already, through ${ring.homeOrganization ?? 'the organisation that registered their first key'}`,
      );
    }
    return saveKeyring(
      ctx,
      { ...ring, homeOrganization: me, txId: ctx.stub.getTxID() },
      KEY_EVENTS.home,
    );
  }

  /**
   * Adds a key. The first needs no signature (the patient's session registers it) and comes
   * through the patient's home organisation, if the ledger knows one (which it becomes, if not);
   * any later one must be signed by a registered key over keyPayload(…, remove false,
   * keysVersion).
   */
  @Transaction()
  @Returns('string')
  async RegisterPatientKey(
    ctx: Context,
    patientId: string,
    publicKeyJwk: string,
    signature: string,
  ): Promise<string> {
    const pid = v.id(patientId, 'patientId');
    const jwk = parsePublicKeyJwk(v.parseJson(publicKeyJwk, 'publicKeyJwk'));
    const sig = optionalSignature(signature);
    const id = keyIdOf(jwk);
    const ring = await loadKeyring(ctx, pid);
    if (ring.keys.some((k) => k.id === id)) {
      throw new ChaincodeError('CONFLICT', `key ${id} is already registered for ${pid}`);
    }
    if (ring.keys.length >= MAX_KEYS) {
      throw new ChaincodeError('INVALID_ARGUMENT', `a patient holds at most ${MAX_KEYS} keys`);
    }
    const me = caller(ctx);
    if (ring.keysVersion > 0) {
      await requireSignedChange(
        sig,
        (version) => keyPayload(pid, id, false, version),
        ring.keysVersion,
        ring,
        'a key after the first is added',
      );
    } else if (ring.homeOrganization !== undefined && ring.homeOrganization !== me) {
      throw new ChaincodeError(
        'FORBIDDEN',
        `a patient's first key is registered through their home organisation (${ring.homeOrganization}), not ${me}`,
      );
    }
    const txId = ctx.stub.getTxID();
    const record: PatientKeyRecord = {
      id,
      publicKeyJwk: jwk,
      createdAt: txTime(ctx),
      txId,
      writtenBy: caller(ctx),
    };
    const next: PatientKeyring = {
      ...ring,
      homeOrganization: ring.homeOrganization ?? (ring.keysVersion === 0 ? me : undefined),
      keys: [...ring.keys, record],
      keysVersion: ring.keysVersion + 1,
      txId,
    };
    return saveKeyring(ctx, next, KEY_EVENTS.registered);
  }

  /**
   * Removes a key, signed by a registered key (it may be the one removed) over
   * keyPayload(…, remove true, keysVersion). The last key stays: without one the patient could
   * never sign again, and a new first key would need no signature.
   */
  @Transaction()
  @Returns('string')
  async RemovePatientKey(
    ctx: Context,
    patientId: string,
    keyId: string,
    signature: string,
  ): Promise<string> {
    const pid = v.id(patientId, 'patientId');
    if (typeof keyId !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(keyId)) {
      throw new ChaincodeError('INVALID_ARGUMENT', 'keyId must be a key thumbprint (base64url)');
    }
    const sig = optionalSignature(signature);
    const ring = await loadKeyring(ctx, pid);
    if (!ring.keys.some((k) => k.id === keyId)) {
      throw new ChaincodeError('NOT_FOUND', `key ${keyId} is not registered for ${pid}`);
    }
    if (ring.keys.length === 1) {
      throw new ChaincodeError(
        'INVALID_ARGUMENT',
        'the last key cannot be removed; register its replacement first',
      );
    }
    await requireSignedChange(
      sig,
      (version) => keyPayload(pid, keyId, true, version),
      ring.keysVersion,
      ring,
      'a key is removed',
    );
    const txId = ctx.stub.getTxID();
    const next: PatientKeyring = {
      ...ring,
      keys: ring.keys.filter((k) => k.id !== keyId),
      keysVersion: ring.keysVersion + 1,
      txId,
    };
    return saveKeyring(ctx, next, KEY_EVENTS.removed);
  }

  /**
   * Turns signed-only consent on (no signature: it only restricts) or off (signed by a
   * registered key over settingPayload(…, false, settingVersion)). Setting what is already set
   * changes nothing.
   */
  @Transaction()
  @Returns('string')
  async SetSignedConsent(
    ctx: Context,
    patientId: string,
    requireSignedConsent: string,
    signature: string,
  ): Promise<string> {
    const pid = v.id(patientId, 'patientId');
    if (requireSignedConsent !== 'true' && requireSignedConsent !== 'false') {
      throw new ChaincodeError('INVALID_ARGUMENT', 'requireSignedConsent must be true or false');
    }
    const require = requireSignedConsent === 'true';
    const sig = optionalSignature(signature);
    const ring = await loadKeyring(ctx, pid);
    if (ring.requireSignedConsent === require) return JSON.stringify(ring);
    if (require && !ring.keys.length) {
      throw new ChaincodeError(
        'INVALID_ARGUMENT',
        'register a key before requiring signed consent (else no grant could ever be made)',
      );
    }
    if (!require) {
      await requireSignedChange(
        sig,
        (version) => settingPayload(pid, false, version),
        ring.settingVersion,
        ring,
        'signed-only consent is turned off',
      );
    }
    const at = txTime(ctx);
    const periods = [...(ring.signedOnlyPeriods ?? [])];
    if (require) periods.push({ from: at, until: null });
    else if (periods.length && periods[periods.length - 1].until === null) {
      periods[periods.length - 1] = { ...periods[periods.length - 1], until: at };
    }
    const next: PatientKeyring = {
      ...ring,
      requireSignedConsent: require,
      settingVersion: ring.settingVersion + 1,
      signedOnlyPeriods: periods,
      txId: ctx.stub.getTxID(),
    };
    return saveKeyring(ctx, next, KEY_EVENTS.setting);
  }

  @Transaction(false)
  @Returns('string')
  async GetPatientKeys(ctx: Context, patientId: string): Promise<string> {
    return JSON.stringify(await loadKeyring(ctx, v.id(patientId, 'patientId')));
  }

  /**
   * Every keyring as stored, a page at a time, in key order: what an API compares its copy of
   * the signed-only settings with (a deleted or rolled-back row shows only against the whole).
   */
  @Transaction(false)
  @Returns('string')
  async ListPatientKeyrings(ctx: Context, pageSize: string, bookmark: string): Promise<string> {
    const page = await valuesPage<PatientKeyring>(ctx, KEYS.keyring, pageSize, bookmark);
    return JSON.stringify({ keyrings: page.values, bookmark: page.bookmark });
  }
}
