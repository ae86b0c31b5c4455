// A patient's device keys and signed-only setting: the ledger holds them (the keys contract),
// this service hands the patient's calls to it and gives clients the exact bytes to sign. It
// never sees a private key: clients sign, the chaincode verifies.
import { Inject, Injectable } from '@nestjs/common';
import type { PatientKeyring } from '@custodia/chaincode';
import { ChaincodeError } from '@custodia/chaincode/errors';
import { offPeriodsOf, type ChoicePeriod } from '@custodia/chaincode/policy';
import {
  choicePayload,
  consentPayload,
  keyIdOf,
  keyPayload,
  parsePublicKeyJwk,
  type PatientChoiceName,
  PublicKeyJwk,
  revocationPayload,
  settingPayload,
} from '@custodia/chaincode/signed-consent';
import { Actor } from '../auth';
import { BadUserInputError, NotFoundError } from '../common/errors';
import { Ledger, LEDGER } from '../ledger';
import { PatientsService } from '../patients';
import { GrantConsentInput } from './consent.model';
import { checkDetachedJws } from '../common/detached-jws';
import { validateGrant } from './consent.service';
import { PatientKeyModel } from './patient-key.model';
import { SignedConsentSettings } from './signed-consent-settings';

@Injectable()
export class PatientKeysService {
  constructor(
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly patients: PatientsService,
    private readonly settings: SignedConsentSettings,
  ) {}

  /** The bytes to sign for grantConsent(input): the JCS of the grant's terms. */
  async consentPayload(actor: Actor, input: GrantConsentInput): Promise<string> {
    const patientId = await this.patients.requirePatientId(actor);
    if (!input.id) {
      throw new BadUserInputError(
        'Choose the grant id (input.id): it is part of what is signed.',
        'input.id',
      );
    }
    return consentPayload({ id: input.id, patientId, ...validateGrant(input) });
  }

  /** The bytes to sign (optionally) for revokeConsent(id). */
  async revocationPayload(actor: Actor, grantId: string): Promise<string> {
    const patientId = await this.patients.requirePatientId(actor);
    if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(grantId)) {
      throw new BadUserInputError('id must be a grant id', 'id');
    }
    return revocationPayload(patientId, grantId);
  }

  async settingPayload(actor: Actor, requireSignedConsent: boolean): Promise<string> {
    const ring = await this.keyring(await this.patients.requirePatientId(actor));
    return settingPayload(ring.patientId, requireSignedConsent, ring.settingVersion);
  }

  /**
   * The bytes a patient who accepts only signed consent signs to turn a choice (emergency
   * access, AI decisions) back on, naming how many times they turned it off.
   */
  async choicePayload(actor: Actor, choice: PatientChoiceName, allow: boolean): Promise<string> {
    const patientId = await this.patients.requirePatientId(actor);
    const [contract, fn] =
      choice === 'emergency-access'
        ? (['consent', 'GetEmergencyAccess'] as const)
        : (['decisions', 'GetAiDecisions'] as const);
    const setting = await this.ledger.evaluate<{
      allow: boolean;
      setAt: string;
      offPeriods?: ChoicePeriod[];
    }>(contract, fn, [patientId]);
    return choicePayload(patientId, choice, allow, offPeriodsOf(setting).length);
  }

  async keyPayload(actor: Actor, jwk: unknown, remove: boolean): Promise<string> {
    const ring = await this.keyring(await this.patients.requirePatientId(actor));
    return keyPayload(ring.patientId, keyIdOf(publicKey(jwk)), remove, ring.keysVersion);
  }

  async keys(actor: Actor, patientId: string): Promise<PatientKeyModel[]> {
    const own = await this.patients.requirePatientId(actor);
    if (own !== patientId) throw new NotFoundError('No patient with that id.');
    return toModels(await this.keyring(own));
  }

  async register(actor: Actor, jwk: unknown, signature?: string | null): Promise<PatientKeyModel> {
    const patientId = await this.patients.requirePatientId(actor);
    const key = publicKey(jwk);
    const { result } = await this.ledger.submit<PatientKeyring>('keys', 'RegisterPatientKey', [
      patientId,
      JSON.stringify(key),
      checkedSignature(signature),
    ]);
    const id = keyIdOf(key);
    return toModels(result).find((k) => k.id === id)!;
  }

  async remove(actor: Actor, jwk: unknown, signature: string): Promise<PatientKeyModel[]> {
    const patientId = await this.patients.requirePatientId(actor);
    const { result } = await this.ledger.submit<PatientKeyring>('keys', 'RemovePatientKey', [
      patientId,
      keyIdOf(publicKey(jwk)),
      checkedSignature(signature),
    ]);
    return toModels(result);
  }

  /** Sets signed-only consent on the ledger, then here (read-your-writes); the patient's id. */
  async requireSigned(actor: Actor, require: boolean, signature?: string | null): Promise<string> {
    const patientId = await this.patients.requirePatientId(actor);
    const { result } = await this.ledger.submit<PatientKeyring>('keys', 'SetSignedConsent', [
      patientId,
      String(require),
      checkedSignature(signature),
    ]);
    await this.settings.apply(result);
    return patientId;
  }

  /**
   * Whether each patient accepts only grants they signed, as this instance knows it: one
   * query for them all, answers in their order.
   */
  async signedOnlyAll(patientIds: readonly string[]): Promise<boolean[]> {
    const signedOnly = await this.settings.signedOnly(patientIds);
    return patientIds.map((id) => signedOnly.has(id));
  }

  private keyring(patientId: string): Promise<PatientKeyring> {
    return this.ledger.evaluate<PatientKeyring>('keys', 'GetPatientKeys', [patientId]);
  }
}

function publicKey(jwk: unknown): PublicKeyJwk {
  try {
    return parsePublicKeyJwk(jwk);
  } catch (e) {
    if (e instanceof ChaincodeError) {
      throw new BadUserInputError(e.message.replace(/^\[[A-Z_]+\] /, ''), 'publicKeyJwk');
    }
    throw e;
  }
}

/** The chaincode's signature argument: '' stands for none. */
function checkedSignature(signature: string | null | undefined): string {
  return checkDetachedJws(signature, 'signature') ?? '';
}

function toModels(ring: PatientKeyring): PatientKeyModel[] {
  return ring.keys.map((k) => ({
    id: k.id,
    patientId: ring.patientId,
    publicKeyJwk: { ...k.publicKeyJwk },
    createdAt: new Date(k.createdAt),
    ledgerTxId: k.txId,
  }));
}
