// Patient signatures: the exact bytes a patient signs (JCS, RFC 8785) for a grant, a key change
// or the signed-only setting, and the check of a detached compact JWS (ES256, RFC 7515
// appendix F) over them. Pure and deterministic (no clock, no randomness), so every endorsing
// peer reaches the same verdict; no Fabric import, so the API builds the same payloads.
import canonicalize from 'canonicalize';
import { createHash, createPublicKey, KeyObject, verify } from 'node:crypto';
import { ChaincodeError } from './errors';

/** A patient's public device key as the ledger keeps it: EC P-256, nothing else. */
export interface PublicKeyJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** The terms of a grant that a patient signs (validFrom null: from when it is written). */
export interface GrantTerms {
  id: string;
  patientId: string;
  grantee: { type: string; id: string };
  purpose: string;
  actions: readonly string[];
  resourceTypes: readonly string[];
  categories: readonly string[];
  includeRestricted: boolean;
  validFrom: string | null;
  validUntil: string | null;
}

const COORDINATE = /^[A-Za-z0-9_-]{43}$/;
const COMPACT_DETACHED = /^([A-Za-z0-9_-]{1,512})\.\.([A-Za-z0-9_-]{86})$/;
const HEADER_FIELDS = ['alg', 'kid', 'typ'];

const bad = (message: string) => new ChaincodeError('INVALID_ARGUMENT', message);

function jcs(value: unknown): string {
  return canonicalize(value)!;
}

const sorted = (list: readonly string[]) => [...list].sort();

/** The bytes a patient signs to make a grant: JCS of its terms, lists sorted. */
export function consentPayload(t: GrantTerms): string {
  return jcs({
    id: t.id,
    patientId: t.patientId,
    granteeType: t.grantee.type,
    granteeId: t.grantee.id,
    purpose: t.purpose,
    actions: sorted(t.actions),
    resourceTypes: sorted(t.resourceTypes),
    categories: sorted(t.categories),
    includeRestricted: t.includeRestricted,
    validFrom: t.validFrom,
    validUntil: t.validUntil,
  });
}

/**
 * The bytes a patient signs to revoke a grant (optional: revoking needs no signature, but a
 * signed revocation is recorded as the patient's own). A grant is revoked once, so no version.
 */
export function revocationPayload(patientId: string, grantId: string): string {
  return jcs({ type: 'custodia.revocation/v1', patientId, grantId });
}

/**
 * The bytes a patient signs, with a key already registered, to add (or remove) a key. They
 * name the key set's current version, so a signature is good for one change only.
 */
export function keyPayload(
  patientId: string,
  keyId: string,
  remove: boolean,
  keysVersion: number,
): string {
  return jcs({ type: 'custodia.patient-key/v1', patientId, keyId, remove, version: keysVersion });
}

/** A patient's yes/no choice that a signed-only patient turns back on only with a signature. */
export type PatientChoiceName = 'emergency-access' | 'ai-decisions';

/**
 * The bytes a patient who accepts only signed consent signs to turn a choice back on (emergency
 * access, AI decisions): turning it on lets others in, as a grant does. `version` is how many
 * times the patient has turned it off, so that a signature is good for one turning on.
 */
export function choicePayload(
  patientId: string,
  choice: PatientChoiceName,
  allow: boolean,
  version: number,
): string {
  return jcs({ type: 'custodia.patient-choice/v1', patientId, choice, allow, version });
}

/** The bytes a patient signs to change the signed-only setting, naming its current version. */
export function settingPayload(
  patientId: string,
  requireSignedConsent: boolean,
  settingVersion: number,
): string {
  return jcs({
    type: 'custodia.signed-consent/v1',
    patientId,
    requireSignedConsent,
    version: settingVersion,
  });
}

/**
 * A public EC P-256 JWK, checked (a point on the curve, no private part) and reduced to its
 * required members. Messages never echo the key.
 */
export function parsePublicKeyJwk(value: unknown, field = 'publicKeyJwk'): PublicKeyJwk {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`${field} must be a JWK object`);
  }
  const jwk = value as Record<string, unknown>;
  if ('d' in jwk) throw bad(`${field} holds a private key; register the public key only`);
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') {
    throw bad(`${field} must be an EC P-256 key (kty EC, crv P-256)`);
  }
  // What the key says of its own use must agree with verifying ES256 signatures: a key meant
  // for another algorithm or for encryption is refused, not silently taken for this one.
  if (jwk.alg !== undefined && jwk.alg !== 'ES256') {
    throw bad(
      `${field} is for alg ${JSON.stringify(String(jwk.alg)).slice(0, 24)}; only ES256 keys sign consent`,
    );
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') {
    throw bad(
      `${field} has use ${JSON.stringify(String(jwk.use)).slice(0, 24)}; a consent key's use is sig`,
    );
  }
  if (
    jwk.key_ops !== undefined &&
    !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))
  ) {
    throw bad(`${field} has key_ops without verify; a consent key verifies signatures`);
  }
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw bad(`${field} must have base64url coordinates x and y`);
  }
  if (!COORDINATE.test(jwk.x) || !COORDINATE.test(jwk.y)) {
    throw bad(`${field} must have 32-byte base64url coordinates x and y`);
  }
  const key: PublicKeyJwk = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  keyObject(key, field);
  return key;
}

/** The key's RFC 7638 thumbprint (SHA-256, base64url): its id on the ledger. */
export function keyIdOf(jwk: PublicKeyJwk): string {
  const { crv, kty, x, y } = jwk;
  return createHash('sha256').update(jcs({ crv, kty, x, y })).digest('base64url');
}

// Parsed keys by their coordinates (exact, and cheaper than a thumbprint): parsing costs about
// as much as a verification, and a key never changes.
const parsed = new Map<string, KeyObject>();
const MAX_PARSED = 10_000;

function keyObject(jwk: PublicKeyJwk, field = 'publicKeyJwk'): KeyObject {
  const id = `${jwk.x}.${jwk.y}`;
  let key = parsed.get(id);
  if (!key) {
    try {
      key = createPublicKey({ key: { ...jwk }, format: 'jwk' });
    } catch {
      throw bad(`${field} is not a point on the P-256 curve`);
    }
    if (parsed.size >= MAX_PARSED) parsed.clear();
    parsed.set(id, key);
  }
  return key;
}

/** A registered key, as the signature check needs it. */
export interface SigningKey {
  id: string;
  publicKeyJwk: PublicKeyJwk;
}

/**
 * Checks a compact JWS with a detached payload (`header..signature`, ES256) over `payload`
 * against `keys`, and returns the id of the key that made it. The signature itself is checked
 * in libuv's thread pool, so the transactions of a block verify theirs in parallel, off the
 * thread that runs the chaincode. Anything else — a malformed
 * token, another algorithm (`none`, HS256, …), an unknown key, other bytes — is refused with
 * the reason.
 */
export async function verifyDetachedJws(
  jws: unknown,
  payload: string,
  keys: readonly SigningKey[],
  field = 'signature',
): Promise<string> {
  if (typeof jws !== 'string') throw bad(`${field} must be a compact JWS string`);
  const m = COMPACT_DETACHED.exec(jws);
  if (!m) {
    throw bad(
      `${field} must be a compact JWS with a detached payload (header..signature) and a 64-byte ES256 signature`,
    );
  }
  const [, headerB64, signatureB64] = m;
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(headerB64, 'base64url').toString('utf8'));
  } catch {
    throw bad(`${field} has a header that is not JSON`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw bad(`${field} has a header that is not a JSON object`);
  }
  const h = header as Record<string, unknown>;
  if (h.alg !== 'ES256') {
    throw bad(`${field} must use alg ES256 (got ${JSON.stringify(String(h.alg)).slice(0, 24)})`);
  }
  const extra = Object.keys(h).filter((k) => !HEADER_FIELDS.includes(k));
  if (extra.length) {
    throw bad(`${field} has an unsupported header member ${JSON.stringify(extra[0].slice(0, 24))}`);
  }
  if (h.kid !== undefined && typeof h.kid !== 'string') {
    throw bad(`${field} has a kid that is not a string`);
  }
  if (!keys.length) throw bad(`${field}: the patient has no registered key`);
  const candidates = h.kid === undefined ? keys : keys.filter((k) => k.id === h.kid);
  if (!candidates.length) throw bad(`${field} names a key (kid) not registered for this patient`);
  const signingInput = Buffer.from(
    `${headerB64}.${Buffer.from(payload, 'utf8').toString('base64url')}`,
    'ascii',
  );
  const signature = Buffer.from(signatureB64, 'base64url');
  for (const k of candidates) {
    const ok = await new Promise<boolean>((resolve) =>
      verify(
        'sha256',
        signingInput,
        { key: keyObject(k.publicKeyJwk), dsaEncoding: 'ieee-p1363' },
        signature,
        (error, valid) => resolve(!error && valid),
      ),
    );
    if (ok) return k.id;
  }
  throw bad(
    `${field} does not verify with the patient's registered keys over these terms (signed other terms, or with another key?)`,
  );
}
