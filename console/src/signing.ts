// The patient's signing key in this browser: an ECDSA P-256 key made by WebCrypto, its private
// half not extractable (script may sign with it, never read it), kept in IndexedDB per patient
// so that it outlives the session as a device key should. With it the console signs what the
// patient does to their consent (grants, revocations, key changes, the signed-only setting,
// turning emergency access or AI decisions back on) as the chaincode verifies: a compact JWS,
// ES256, payload detached (RFC 7515 appendix F).
//
// The bytes to sign come from the server (consentPayload, keyPayload, …), so before signing,
// the console reads them and checks that they say what the patient asked for: a server that
// answered other terms gets no signature.
import { createStore, del, get, set, type UseStore } from 'idb-keyval';
import { calculateJwkThumbprint, CompactSign, exportJWK } from 'jose';
import { ApiError, gql } from './api';

export interface PublicKeyJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** What this browser keeps of a patient's key. */
export interface DeviceKey {
  privateKey: CryptoKey;
  publicJwk: PublicKeyJwk;
  /** RFC 7638 thumbprint, as the ledger names the key. */
  kid: string;
}

let store: UseStore | null = null;
const keys = () => (store ??= createStore('custodia-console', 'device-keys'));

/** The key this browser holds for the patient, if any. */
export async function loadDeviceKey(patientId: string): Promise<DeviceKey | null> {
  try {
    return (await get<DeviceKey>(patientId, keys())) ?? null;
  } catch {
    // No IndexedDB (a private window that refuses it): as if there were no key.
    return null;
  }
}

/**
 * The key this browser holds for the patient if the ledger still has it registered; null
 * otherwise. A key removed elsewhere signs nothing: a revocation then goes unsigned (it needs
 * no signature) instead of being refused for an unknown key, and the key panel offers to
 * forget it.
 */
export async function registeredKey(patientId: string): Promise<DeviceKey | null> {
  const key = await loadDeviceKey(patientId);
  if (!key) return null;
  const { patientKeys } = await gql<{ patientKeys: { id: string }[] }>(
    'query($p: ID!) { patientKeys(patientId: $p) { id } }',
    { p: patientId },
  );
  return patientKeys.some((k) => k.id === key.kid) ? key : null;
}

export async function saveDeviceKey(patientId: string, key: DeviceKey): Promise<void> {
  await set(patientId, key, keys());
}

export async function forgetDeviceKey(patientId: string): Promise<void> {
  await del(patientId, keys());
}

/** A new P-256 key pair whose private key cannot be exported. */
export async function makeDeviceKey(): Promise<DeviceKey> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
  const jwk = await exportJWK(pair.publicKey);
  const publicJwk: PublicKeyJwk = { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y! };
  return {
    privateKey: pair.privateKey,
    publicJwk,
    kid: await calculateJwkThumbprint(publicJwk, 'sha256'),
  };
}

/** The RFC 7638 thumbprint of a public EC key, as the ledger names it; null if it is none. */
export async function thumbprintOf(jwk: unknown): Promise<string | null> {
  const key = publicPart(jwk);
  return key ? calculateJwkThumbprint(key, 'sha256') : null;
}

/** `header..signature` over the payload's bytes. */
export async function signDetached(key: DeviceKey, payload: string): Promise<string> {
  const jws = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .sign(key.privateKey);
  const [header, , signature] = jws.split('.');
  return `${header}..${signature}`;
}

/**
 * Checks that a payload the server answered says exactly `expected` (arrays in any order,
 * instants as the same moment), plus a `version` number where `versioned`; throws otherwise,
 * and nothing is signed.
 */
export function checkPayload(
  payload: string,
  expected: Record<string, unknown>,
  versioned = false,
): void {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    value = null;
  }
  const wanted = new Set([...Object.keys(expected), ...(versioned ? ['version'] : [])]);
  const ok =
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === wanted.size &&
    Object.keys(value).every((k) => wanted.has(k)) &&
    Object.entries(expected).every(([k, v]) => same((value as Record<string, unknown>)[k], v)) &&
    (!versioned || Number.isSafeInteger((value as { version?: unknown }).version));
  if (!ok) {
    throw new ApiError(
      'BAD_USER_INPUT',
      'The server asked this browser to sign something other than what you asked for, so nothing was signed or changed.',
    );
  }
}

function same(actual: unknown, expected: unknown): boolean {
  if (expected instanceof Date) {
    return typeof actual === 'string' && Date.parse(actual) === expected.getTime();
  }
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      [...actual].sort().join('\u0000') === [...expected].map(String).sort().join('\u0000')
    );
  }
  return actual === expected;
}

/**
 * The patient's signature over the payload `fetchPayload` answers, once checked against
 * `expected`; null when this browser holds no key for them (the change goes unsigned).
 */
export async function signIfHeld(
  patientId: string,
  fetchPayload: () => Promise<string>,
  expected: Record<string, unknown>,
  versioned = false,
): Promise<string | null> {
  const key = await registeredKey(patientId);
  if (!key) return null;
  const payload = await fetchPayload();
  checkPayload(payload, expected, versioned);
  return signDetached(key, payload);
}

/** A grant's terms as GrantConsentInput takes them (instants as ISO strings). */
export interface GrantInput {
  granteeType: string;
  granteeId: string;
  purpose: string;
  actions: string[];
  resourceTypes?: string[];
  categories?: string[];
  includeRestricted?: boolean;
  validFrom?: string;
  validUntil?: string;
}

/**
 * The grant input to send: as it is when this browser holds no key for the patient, else with
 * a fresh id and the patient's signature over its terms (consentPayload, checked first).
 */
export async function signedGrant(
  patientId: string,
  input: GrantInput,
): Promise<GrantInput & { id?: string; signature?: string }> {
  const key = await registeredKey(patientId);
  if (!key) return input;
  const withId = { ...input, id: crypto.randomUUID() };
  const { consentPayload } = await gql<{ consentPayload: string }>(
    'query($input: GrantConsentInput!) { consentPayload(input: $input) }',
    { input: withId },
  );
  const instant = (at?: string) => (at ? new Date(at) : null);
  checkPayload(consentPayload, {
    id: withId.id,
    patientId,
    granteeType: input.granteeType,
    granteeId: input.granteeId,
    purpose: input.purpose,
    actions: input.actions,
    resourceTypes: input.resourceTypes ?? [],
    categories: input.categories ?? [],
    includeRestricted: input.includeRestricted ?? false,
    validFrom: instant(input.validFrom),
    validUntil: instant(input.validUntil),
  });
  return { ...withId, signature: await signDetached(key, consentPayload) };
}

/** The patient's signature of a grant's revocation, when this browser holds their key. */
export function revocationSignature(patientId: string, grantId: string): Promise<string | null> {
  return signIfHeld(
    patientId,
    () =>
      gql<{ revocationPayload: string }>('query($id: ID!) { revocationPayload(id: $id) }', {
        id: grantId,
      }).then((d) => d.revocationPayload),
    { type: 'custodia.revocation/v1', patientId, grantId },
  );
}

/**
 * ErrorNotice's help for a refusal that wanted the patient's signature: where to get a key in
 * this browser. Undefined for any other error.
 */
export function signatureHelp(
  error: ApiError | null,
  where = 'under “Settings and my data”',
): Record<string, string> | undefined {
  if (error?.code !== 'BAD_USER_INPUT' || !/signature|signed/i.test(error.message)) return;
  return {
    BAD_USER_INPUT: `This needs your signature, and this browser holds no signing key of yours that is still registered. Make or add one ${where}, then try again.`,
  };
}

/**
 * The public key in a JWK someone pasted: its curve and coordinates only, whatever else it
 * holds (a key file's private part `d` among them), so that nothing secret leaves the page.
 * Null if it is not an EC key.
 */
export function publicPart(jwk: unknown): PublicKeyJwk | null {
  const k = jwk as Partial<Record<'kty' | 'crv' | 'x' | 'y', unknown>> | null;
  if (typeof k !== 'object' || k === null || k.kty !== 'EC') return null;
  const { crv, x, y } = k;
  if (typeof crv !== 'string' || typeof x !== 'string' || typeof y !== 'string') return null;
  return { kty: 'EC', crv: crv as 'P-256', x, y };
}
