// A consent grant as a FHIR R4 Consent resource (ConsentGrant.fhir, exportMyData). The grant's
// terms map onto one `permit` provision: grantee → provision.actor (recipient), actions →
// provision.action, purpose → provision.purpose, resource types → provision.class, categories →
// provision.code, sensitivity → provision.securityLabel, validity → provision.period. The grant
// id and its ledger transaction travel as identifiers, so an importer can tell our grants from
// a consent document a patient stored as a record (see records/import). A grant the patient
// signed with their own key carries a verification by the patient.
import type { ConsentGrantModel } from './consent.model';

/** Identifier system of a Custodia grant id (also how import recognises a grant's Consent). */
export const GRANT_IDENTIFIER_SYSTEM = 'urn:custodia:consent-grant';
/** Identifier system of the ledger transaction that recorded the grant. */
export const LEDGER_TX_IDENTIFIER_SYSTEM = 'urn:custodia:ledger-tx';
/** Code system of a record category (Custodia's labels, e.g. `laboratory`). */
export const RECORD_CATEGORY_SYSTEM = 'urn:custodia:record-category';

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const ACTION = { READ: 'access', WRITE: 'correct', TRAIN: 'use' } as const;
const PURPOSE = { TREATMENT: 'TREAT', RESEARCH: 'HRESCH' } as const;
/**
 * Whom a grant names, as Consent.provision.actor.reference may point (R4 allows Device, Group,
 * CareTeam, Organization, Patient, Practitioner, RelatedPerson, PractitionerRole): a study is
 * none of these, so it, and any id FHIR cannot hold, is named by identifier instead.
 */
const RECIPIENT = {
  CLINICIAN: 'Practitioner',
  ORGANIZATION: 'Organization',
  STUDY: null,
};
/** The identifier systems of a grantee named by identifier. */
export const GRANTEE_SYSTEM = {
  CLINICIAN: 'urn:custodia:clinician',
  ORGANIZATION: 'urn:custodia:organization',
  STUDY: 'urn:custodia:study',
};

type GrantTerms = Pick<
  ConsentGrantModel,
  | 'id'
  | 'patientId'
  | 'grantee'
  | 'purpose'
  | 'actions'
  | 'resourceTypes'
  | 'categories'
  | 'includeRestricted'
  | 'validFrom'
  | 'validUntil'
  | 'status'
  | 'ledgerTxId'
  | 'createdAt'
> &
  Partial<Pick<ConsentGrantModel, 'patientSigned'>>;

/** The grant as a FHIR R4 Consent (valid by records/fhir's validator). */
export function grantAsFhirConsent(grant: GrantTerms): Record<string, unknown> & {
  resourceType: 'Consent';
} {
  const research = grant.purpose === 'RESEARCH';
  const period: Record<string, string> = { start: grant.validFrom.toISOString() };
  if (grant.validUntil) period.end = grant.validUntil.toISOString();
  const provision: Record<string, unknown> = {
    type: 'permit',
    period,
    actor: [
      {
        role: coded('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'IRCP'),
        reference: recipient(grant.grantee),
      },
    ],
    action: grant.actions.map((a) =>
      coded('http://terminology.hl7.org/CodeSystem/consentaction', ACTION[a]),
    ),
    securityLabel: (grant.includeRestricted ? ['N', 'R', 'V'] : ['N']).map((code) => ({
      system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
      code,
    })),
    purpose: [
      {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
        code: PURPOSE[grant.purpose],
      },
    ],
  };
  if (grant.resourceTypes.length) {
    provision.class = grant.resourceTypes.map((code) => ({
      system: 'http://hl7.org/fhir/resource-types',
      code,
    }));
  }
  if (grant.categories.length) {
    provision.code = grant.categories.map((code) => coded(RECORD_CATEGORY_SYSTEM, code));
  }
  const consent: Record<string, unknown> & { resourceType: 'Consent' } = {
    resourceType: 'Consent',
  };
  // A grant id may hold `_` or `:` (client-chosen ids), which a FHIR id may not: then only
  // the identifier carries it.
  if (FHIR_ID.test(grant.id)) consent.id = grant.id;
  Object.assign(consent, {
    identifier: [
      { system: GRANT_IDENTIFIER_SYSTEM, value: grant.id },
      { system: LEDGER_TX_IDENTIFIER_SYSTEM, value: grant.ledgerTxId },
    ],
    // Revoked, expired or suspended grants permit nothing.
    status: grant.status === 'ACTIVE' ? 'active' : 'inactive',
    scope: coded(
      'http://terminology.hl7.org/CodeSystem/consentscope',
      research ? 'research' : 'patient-privacy',
    ),
    category: [coded('http://loinc.org', '59284-0')],
    patient: { reference: `Patient/${grant.patientId}` },
    dateTime: grant.createdAt.toISOString(),
    performer: [{ reference: `Patient/${grant.patientId}` }],
    policyRule: coded('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'OPTIN'),
  });
  // Signed by the patient's own device key, verified by the chaincode when it was written:
  // verified with the patient, then (the ledger's transaction time is the grant's).
  if (grant.patientSigned) {
    consent.verification = [
      {
        verified: true,
        verifiedWith: { reference: `Patient/${grant.patientId}` },
        verificationDate: grant.createdAt.toISOString(),
      },
    ];
  }
  consent.provision = provision;
  return consent;
}

/** Whether a resource is the Consent of a Custodia grant (by its identifier). */
export function isGrantConsent(resource: Record<string, unknown>): boolean {
  if (resource.resourceType !== 'Consent' || !Array.isArray(resource.identifier)) return false;
  return resource.identifier.some(
    (i) => (i as { system?: unknown } | null)?.system === GRANT_IDENTIFIER_SYSTEM,
  );
}

function coded(system: string, code: string) {
  return { coding: [{ system, code }] };
}

function recipient(grantee: GrantTerms['grantee']): Record<string, unknown> {
  const type = RECIPIENT[grantee.type];
  if (type && FHIR_ID.test(grantee.id)) return { reference: `${type}/${grantee.id}` };
  return {
    identifier: { system: GRANTEE_SYSTEM[grantee.type], value: grantee.id },
    display: `${grantee.type.toLowerCase()} ${grantee.id}`,
  };
}
