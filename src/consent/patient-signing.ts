// The patient's side of signed consent, for the CLI and for scripts: make a device key pair and
// sign a payload as a compact JWS with a detached payload (RFC 7515 appendix F). The API never
// calls this with a patient's key: it only hands out payloads and lets the chaincode verify.
import {
  calculateJwkThumbprint,
  CompactSign,
  exportJWK,
  generateKeyPair,
  importJWK,
  JWK,
} from 'jose';
import { ACTIONS, GRANTEE_TYPES, PURPOSES } from '@custodia/chaincode/policy';
import { consentPayload } from '@custodia/chaincode/signed-consent';
import { BadUserInputError } from '../common/errors';
import { isUuid } from '../common/ids';
import { INSTANT_RULE, parseInstant } from '../common/instants';
import canonicalize from 'canonicalize';
import { GrantConsentInput } from './consent.model';
import { GRANT_ID, validateGrant, validateSignature } from './consent.service';

export interface DeviceKeyPair {
  /** The private JWK (holds `d`), with its thumbprint as `kid`. */
  privateJwk: JWK;
  /** The public JWK to register: kty, crv, x, y and the same `kid`. */
  publicJwk: JWK;
}

export async function generateDeviceKey(): Promise<DeviceKeyPair> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const privateJwk = await exportJWK(pair.privateKey);
  return {
    privateJwk: { ...privateJwk, kid, alg: 'ES256' },
    publicJwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y, kid },
  };
}

/** A compact JWS over `payload` (ES256), its payload detached: `header..signature`. */
export async function signDetached(privateJwk: JWK, payload: string): Promise<string> {
  if (privateJwk.kty !== 'EC' || privateJwk.crv !== 'P-256' || !privateJwk.d) {
    throw new BadUserInputError(
      'the key must be a private EC P-256 JWK (as `custodia keygen` writes)',
    );
  }
  const kid = await calculateJwkThumbprint(
    { kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x, y: privateJwk.y },
    'sha256',
  );
  const key = await importJWK({ ...privateJwk, alg: 'ES256' }, 'ES256').catch(() => {
    throw new BadUserInputError(
      'the key is not a usable EC P-256 private key (its private part and its coordinates x, y do not belong together?)',
    );
  });
  const jws = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'ES256', kid })
    .sign(key);
  const [header, , signature] = jws.split('.');
  return `${header}..${signature}`;
}

/** GrantConsentInput's fields, and the patientId a signing tool's input names. */
const GRANT_INPUT_FIELDS = new Set([
  'id',
  'patientId',
  'granteeType',
  'granteeId',
  'purpose',
  'actions',
  'resourceTypes',
  'categories',
  'includeRestricted',
  'validFrom',
  'validUntil',
  'signature',
]);

/**
 * consentPayload of a grant input as JSON (instants as ISO strings), for `patientId`: the same
 * bytes the API's consentPayload query answers.
 */
export function grantPayloadOf(json: Record<string, unknown>, patientId: string): string {
  if (!isUuid(patientId)) {
    throw new BadUserInputError('the patient id must be a UUID, as registerPatient gave it');
  }
  // Each field as GrantConsentInput types it: a value of another type would be signed as
  // something else (a number for validUntil as no end at all), so it is refused, as the API
  // refuses it. Instants are read as the server's DateTime reads them: never in this zone.
  const instant = (k: 'validFrom' | 'validUntil') => {
    const v = json[k];
    if (v === undefined || v === null) return null;
    const at = typeof v === 'string' ? parseInstant(v) : new Date(NaN);
    if (Number.isNaN(at.getTime())) {
      throw new BadUserInputError(`${k} must be ${INSTANT_RULE}`, k);
    }
    return at;
  };
  const strings = (k: 'actions' | 'resourceTypes' | 'categories') => {
    const v = json[k];
    if ((v === undefined || v === null) && k !== 'actions') return;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new BadUserInputError(`${k} must be a list of strings`, k);
    }
  };
  strings('actions');
  strings('resourceTypes');
  strings('categories');
  const restricted = json.includeRestricted;
  if (restricted !== undefined && restricted !== null && typeof restricted !== 'boolean') {
    throw new BadUserInputError('includeRestricted must be true or false', 'includeRestricted');
  }
  const input = {
    ...json,
    validFrom: instant('validFrom'),
    validUntil: instant('validUntil'),
  } as unknown as GrantConsentInput;
  if (typeof input.id !== 'string' || !input.id) {
    throw new BadUserInputError('the grant needs its id (the id is part of what is signed)', 'id');
  }
  for (const k of ['granteeType', 'granteeId', 'purpose'] as const) {
    if (typeof input[k] !== 'string') throw new BadUserInputError(`the grant needs ${k}`, k);
  }
  // What GrantConsentInput would refuse is refused here, before the patient signs it.
  const unknown = Object.keys(json).find((k) => !GRANT_INPUT_FIELDS.has(k));
  if (unknown !== undefined) {
    throw new BadUserInputError(
      `the grant has a field GrantConsentInput does not (${JSON.stringify(unknown.slice(0, 40))})`,
      unknown.slice(0, 40),
    );
  }
  const enums = [
    ['granteeType', GRANTEE_TYPES],
    ['purpose', PURPOSES],
  ] as const;
  for (const [k, allowed] of enums) {
    if (!(allowed as readonly string[]).includes(input[k])) {
      throw new BadUserInputError(`${k} must be one of ${allowed.join(', ')}`, k);
    }
  }
  if (!input.actions.every((a) => (ACTIONS as readonly string[]).includes(a))) {
    throw new BadUserInputError(`actions must each be one of ${ACTIONS.join(', ')}`, 'actions');
  }
  // The id as the API will take it: a signature over one it refuses is wasted.
  validateSignature({ ...input, signature: null });
  return consentPayload({ id: input.id, patientId, ...validateGrant(input) });
}

/** The changes `custodia sign` signs: each payload names its kind in `type`. */
const CHANGE_TYPES: Readonly<Record<string, string>> = {
  'custodia.patient-key/v1': 'a device key added or removed',
  'custodia.signed-consent/v1': 'signed-only consent turned on or off',
  'custodia.revocation/v1': 'a grant revoked',
  'custodia.patient-choice/v1': 'emergency access or AI decisions allowed again',
};

/**
 * What a payload given to `custodia sign` asks to be signed for, refusing anything but the
 * canonical bytes of a key change, a signed-only setting or a revocation, as the API's
 * keyPayload, settingPayload and revocationPayload answer them. A grant's terms are refused:
 * they are signed with `sign-grant`, from a grant input the signer can read, so that no one is
 * led to sign a grant while told it is a setting.
 */
export function signableChange(payload: string): string {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    throw new BadUserInputError(
      'the payload is not JSON: give the bytes keyPayload, settingPayload or revocationPayload answered',
    );
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    typeof type !== 'string'
  ) {
    const grant = typeof value === 'object' && value !== null && 'granteeType' in value;
    throw new BadUserInputError(
      grant
        ? "the payload is a grant's terms: sign a grant with `custodia sign-grant --input GRANT.json`, which reads the grant you mean to make"
        : 'the payload names no change (no type): give the bytes keyPayload, settingPayload or revocationPayload answered',
    );
  }
  const what = CHANGE_TYPES[type];
  if (!what) {
    throw new BadUserInputError(
      `the payload is of an unknown kind (${JSON.stringify(type.slice(0, 40))}); this signs ${Object.values(CHANGE_TYPES).join(', ')}`,
    );
  }
  if (canonicalize(value) !== payload) {
    throw new BadUserInputError(
      'the payload is not in its canonical form (JCS) as the API answered it: pass the bytes unchanged',
    );
  }
  const change = describeChange(value as Record<string, unknown>);
  if (!change) {
    throw new BadUserInputError(
      `the payload is not whole: ${what} is signed over exactly the fields the API answers (pass its bytes unchanged)`,
    );
  }
  return change;
}

/** What each kind of change holds besides its type, and how each field is checked. */
const PATIENT_ID = (v: unknown) => typeof v === 'string' && isUuid(v);
const VERSION = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const BOOLEAN = (v: unknown) => typeof v === 'boolean';
const CHANGE_FIELDS: Readonly<Record<string, Record<string, (v: unknown) => boolean>>> = {
  'custodia.patient-key/v1': {
    patientId: PATIENT_ID,
    keyId: (v) => typeof v === 'string' && /^[A-Za-z0-9_-]{43}$/.test(v),
    remove: BOOLEAN,
    version: VERSION,
  },
  'custodia.signed-consent/v1': {
    patientId: PATIENT_ID,
    requireSignedConsent: BOOLEAN,
    version: VERSION,
  },
  'custodia.revocation/v1': {
    patientId: PATIENT_ID,
    grantId: (v) => typeof v === 'string' && GRANT_ID.test(v),
  },
  'custodia.patient-choice/v1': {
    patientId: PATIENT_ID,
    choice: (v) => v === 'emergency-access' || v === 'ai-decisions',
    allow: BOOLEAN,
    version: VERSION,
  },
};

/**
 * The change a whole payload makes, in words naming what it changes (each value checked
 * first, so that nothing but ids and numbers reaches the terminal); null when a field is
 * missing, extra or of another shape.
 */
function describeChange(v: Record<string, unknown>): string | null {
  const fields = CHANGE_FIELDS[v.type as string];
  const keys = Object.keys(v).filter((k) => k !== 'type');
  if (keys.length !== Object.keys(fields).length) return null;
  if (!keys.every((k) => fields[k]?.(v[k]))) return null;
  const patient = `patient ${v.patientId as string}`;
  switch (v.type) {
    case 'custodia.patient-key/v1':
      return `${v.remove ? 'removing' : 'adding'} device key ${v.keyId as string} ${v.remove ? 'from' : 'to'} the keys of ${patient} (as they stand at version ${v.version as number})`;
    case 'custodia.signed-consent/v1':
      return `turning signed-only consent ${v.requireSignedConsent ? 'on' : 'off'} for ${patient} (setting version ${v.version as number})`;
    case 'custodia.revocation/v1':
      return `revoking grant ${v.grantId as string} of ${patient}`;
    default:
      return `${v.allow ? 'allowing' : 'refusing'} ${v.choice === 'emergency-access' ? 'emergency access' : 'AI decisions'} for ${patient} (turned off ${v.version as number} times before)`;
  }
}
