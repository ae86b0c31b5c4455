// The patient's pages: my records, my consents (grant and revoke), who read my records. Studies
// and settings (emergency access, erasure) are in patient-studies.tsx and patient-settings.tsx.
import { FormEvent, useState } from 'react';
import { ApiError, gql } from './api';
import { ErrorNotice, formatTime, short, toApiError, useLoad, WithheldNotice } from './common';
import { Paged, usePagedList } from './paging';
import { RecordTimeline } from './patient-timeline';
import { revocationSignature, signatureHelp, signedGrant } from './signing';
import { allRecordsOf, clinicalDate, INTEGRITY_WORDS, summaryOf, WITHHELD_HELP } from './records';
import './patient.css';

const RECORD_COLUMNS = ['Type', 'What', 'Date', 'Sensitivity', 'Integrity'];

export function MyRecords({ patientId }: { patientId: string }) {
  const { data, error, loading } = useLoad(() => allRecordsOf(patientId), [patientId]);
  const items = [...(data?.records ?? [])].sort(
    (a, b) =>
      a.resourceType.localeCompare(b.resourceType) ||
      clinicalDate(b).localeCompare(clinicalDate(a)),
  );
  return (
    <section aria-labelledby="records-h">
      <h2 id="records-h">My records</h2>
      <p>
        Your patient id is <code data-testid="patient-id">{patientId}</code>. Each record&apos;s
        fingerprint is checked against the ledger when it is read.
      </p>
      <ErrorNotice error={error} />
      {loading && <p aria-live="polite">Loading…</p>}
      {data && (
        <WithheldNotice errors={data.withheld} one="record" many="records" help={WITHHELD_HELP} />
      )}
      {data && items.length === 0 && data.withheld.length === 0 && <p>You have no records yet.</p>}
      {items.length > 0 && <RecordTimeline records={items} />}
      {items.length > 0 && (
        <div className="table-wrap">
          {/* At phone width each row stacks into a card (patient.css); the explicit roles keep
              it a table for assistive technology whatever its CSS display. */}
          <table className="records-table" role="table">
            <caption>{items.length} records, by type and date (newest first)</caption>
            <thead role="rowgroup">
              <tr role="row">
                {RECORD_COLUMNS.map((c) => (
                  <th scope="col" role="columnheader" key={c}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody role="rowgroup">
              {items.map((r) => (
                <tr key={r.id} role="row">
                  <td role="cell" data-label="Type">
                    {r.resourceType}
                  </td>
                  <td role="cell" data-label="What">
                    {summaryOf(r.resource)}
                  </td>
                  <td role="cell" data-label="Date">
                    {formatTime(clinicalDate(r))}
                  </td>
                  <td role="cell" data-label="Sensitivity">
                    {r.sensitivity === 'RESTRICTED' ? 'Restricted' : 'Normal'}
                  </td>
                  <td role="cell" data-label="Integrity">
                    <span className={`integrity integrity-${r.integrity.toLowerCase()}`}>
                      {INTEGRITY_WORDS[r.integrity]}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export interface Grant {
  id: string;
  grantee: { type: string; id: string };
  purpose: string;
  actions: string[];
  resourceTypes: string[];
  categories: string[];
  includeRestricted: boolean;
  validFrom: string;
  validUntil: string | null;
  /** SUSPENDED: unsigned while the patient accepts only signed grants (still revocable). */
  status: 'ACTIVE' | 'REVOKED' | 'EXPIRED' | 'SUSPENDED';
  /** When it was revoked (on the ledger), if it was. */
  revokedAt?: string | null;
  /** Signed with one of the patient's keys, as the chaincode verified. */
  patientSigned?: boolean;
  ledgerTxId: string;
}

export const GRANT_FIELDS = `id grantee { type id } purpose actions resourceTypes categories includeRestricted validFrom validUntil status revokedAt ledgerTxId patientSigned`;

/** A grant's window in words: from, until its end or its revocation (UTC). */
export function grantWindow(g: Grant): string {
  const from = `From ${formatTime(g.validFrom)}`;
  if (g.status === 'REVOKED' && g.revokedAt) {
    return `${from}, revoked ${formatTime(g.revokedAt)} (UTC)`;
  }
  return g.validUntil
    ? `${from} until ${formatTime(g.validUntil)} (UTC)`
    : `${from} (UTC), until revoked`;
}

const RESOURCE_TYPES = [
  'Observation',
  'Condition',
  'MedicationRequest',
  'AllergyIntolerance',
  'Immunization',
  'Procedure',
  'DiagnosticReport',
];

const ACTION_WORDS: Record<string, string> = {
  READ: 'read my records',
  WRITE: 'add records for me',
  TRAIN: 'use them to train a study’s model',
};

function describeGrant(g: Grant): string {
  const what = g.resourceTypes.length ? g.resourceTypes.join(', ') : 'all record types';
  const cats = g.categories.length ? ` in ${g.categories.join(', ')}` : '';
  const restricted = g.includeRestricted ? ', restricted records included' : '';
  return `May ${g.actions.map((a) => ACTION_WORDS[a] ?? a).join(' and ')} (${what}${cats}${restricted}) for ${g.purpose.toLowerCase()}`;
}

/**
 * The grant's badge: its status, except that an ACTIVE grant whose start is still ahead is not
 * in effect yet (the server counts it ACTIVE, but it allows nothing until then).
 */
function grantBadge(g: Pick<Grant, 'status' | 'validFrom'>): {
  label: string;
  className: string;
} {
  if (g.status === 'ACTIVE' && Date.parse(g.validFrom) > Date.now()) {
    return { label: 'NOT YET IN EFFECT', className: 'badge badge-scheduled' };
  }
  return { label: g.status, className: `badge badge-${g.status.toLowerCase()}` };
}

function csv(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function Consents({ patientId }: { patientId: string }) {
  const grants = useLoad(
    () => gql<{ consents: Grant[] }>(`query { consents { ${GRANT_FIELDS} } }`),
    [],
  );
  const [revoking, setRevoking] = useState<string | null>(null);
  const [revokeError, setRevokeError] = useState<ApiError | null>(null);
  const [status, setStatus] = useState('');

  async function revoke(g: Grant) {
    setRevoking(g.id);
    setRevokeError(null);
    try {
      const signature = await revocationSignature(patientId, g.id);
      await gql(
        `mutation($id: ID!, $s: String) { revokeConsent(id: $id, signature: $s) { id status } }`,
        {
          id: g.id,
          s: signature,
        },
      );
      await grants.reload();
      setStatus(`Revoked: ${g.grantee.id} can no longer use this grant.`);
    } catch (e) {
      setRevokeError(toApiError(e));
    } finally {
      setRevoking(null);
    }
  }

  return (
    <section aria-labelledby="consents-h">
      <h2 id="consents-h">My consents</h2>
      <GrantForm
        patientId={patientId}
        onGranted={async (g) => {
          await grants.reload();
          setStatus(
            `Granted to ${g.grantee.id}; written to the ledger${g.patientSigned ? ', signed by you' : ''}.`,
          );
        }}
      />
      <h3>Grants</h3>
      <p aria-live="polite" className="status">
        {status}
      </p>
      <ErrorNotice error={grants.error ?? revokeError} />
      {grants.data && grants.data.consents.length === 0 && <p>You have granted nothing yet.</p>}
      {grants.data && grants.data.consents.length > 0 && (
        <ul className="cards" aria-label="Your grants">
          {grants.data.consents.map((g) => (
            <li key={g.id} className="card" data-testid="grant" data-grantee={g.grantee.id}>
              <p>
                <strong>
                  {g.grantee.type.toLowerCase()} {g.grantee.id}
                </strong>{' '}
                <span className={grantBadge(g).className} data-testid="grant-status">
                  {grantBadge(g).label}
                </span>
              </p>
              <p>{describeGrant(g)}</p>
              {g.status === 'SUSPENDED' && (
                <p className="muted" data-testid="grant-suspended-why">
                  Not in force: you accept only grants you signed, and this one is not signed. It
                  counts again if you turn that off; to keep it, grant it again from a browser that
                  holds your signing key, and revoke this one.
                </p>
              )}
              <p className="muted">
                {grantWindow(g)} · ledger transaction <code>{short(g.ledgerTxId)}</code>
                {g.patientSigned ? ' · signed by you' : ''}
              </p>
              {(g.status === 'ACTIVE' || g.status === 'SUSPENDED') && (
                <button
                  type="button"
                  className="danger"
                  onClick={() => void revoke(g)}
                  disabled={revoking === g.id}
                  aria-label={`Revoke the grant to ${g.grantee.id}`}
                >
                  {revoking === g.id ? 'Revoking…' : 'Revoke'}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function GrantForm({
  patientId,
  onGranted,
}: {
  patientId: string;
  onGranted: (g: Grant) => Promise<void>;
}) {
  const [granteeType, setGranteeType] = useState('CLINICIAN');
  const [granteeId, setGranteeId] = useState('');
  const [purpose, setPurpose] = useState('TREATMENT');
  const [actions, setActions] = useState<string[]>(['READ']);
  const [types, setTypes] = useState<string[]>([]);
  const [categories, setCategories] = useState('');
  const [restricted, setRestricted] = useState(false);
  const [validFrom, setValidFrom] = useState('');
  const [validUntil, setValidUntil] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const toggle = (list: string[], v: string) =>
    list.includes(v) ? list.filter((x) => x !== v) : [...list, v];

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { grantConsent } = await gql<{ grantConsent: Grant }>(
        `mutation($input: GrantConsentInput!) { grantConsent(input: $input) { ${GRANT_FIELDS} } }`,
        {
          // Signed when this browser holds the patient's key (signing.ts).
          input: await signedGrant(patientId, {
            granteeType,
            granteeId: granteeId.trim(),
            purpose,
            actions,
            resourceTypes: types,
            categories: csv(categories),
            includeRestricted: restricted,
            ...(validFrom ? { validFrom: new Date(validFrom).toISOString() } : {}),
            ...(validUntil ? { validUntil: new Date(validUntil).toISOString() } : {}),
          }),
        },
      );
      setGranteeId('');
      await onGranted(grantConsent);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={(e) => void submit(e)} className="panel" aria-labelledby="grant-h">
      <h3 id="grant-h">Give someone access</h3>
      <fieldset>
        <legend>1. Who</legend>
        <label>
          Kind
          <select value={granteeType} onChange={(e) => setGranteeType(e.target.value)}>
            <option value="CLINICIAN">A clinician</option>
            <option value="ORGANIZATION">An organisation (everyone working there)</option>
            <option value="STUDY">A research study</option>
          </select>
        </label>
        <label>
          Their id
          <input
            required
            value={granteeId}
            onChange={(e) => setGranteeId(e.target.value)}
            autoComplete="off"
          />
        </label>
      </fieldset>
      <fieldset>
        <legend>2. Why</legend>
        <label className="inline">
          <input
            type="radio"
            name="purpose"
            value="TREATMENT"
            checked={purpose === 'TREATMENT'}
            onChange={() => setPurpose('TREATMENT')}
          />
          To treat me
        </label>
        <label className="inline">
          <input
            type="radio"
            name="purpose"
            value="RESEARCH"
            checked={purpose === 'RESEARCH'}
            onChange={() => setPurpose('RESEARCH')}
          />
          For research
        </label>
      </fieldset>
      <fieldset>
        <legend>3. What they may do</legend>
        {Object.entries(ACTION_WORDS).map(([a, words]) => (
          <label className="inline" key={a}>
            <input
              type="checkbox"
              checked={actions.includes(a)}
              onChange={() => setActions(toggle(actions, a))}
            />
            {words[0].toUpperCase() + words.slice(1)}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>4. Which records (none ticked: all types)</legend>
        {RESOURCE_TYPES.map((t) => (
          <label className="inline" key={t}>
            <input
              type="checkbox"
              checked={types.includes(t)}
              onChange={() => setTypes(toggle(types, t))}
            />
            {t}
          </label>
        ))}
        <label>
          Only these categories (comma-separated; empty: all)
          <input
            value={categories}
            onChange={(e) => setCategories(e.target.value)}
            placeholder="laboratory, vital-signs"
          />
        </label>
      </fieldset>
      <fieldset>
        <legend>5. Restricted records</legend>
        <label className="inline">
          <input
            type="checkbox"
            checked={restricted}
            onChange={(e) => setRestricted(e.target.checked)}
          />
          Also share records marked restricted (e.g. mental health, sexual health)
        </label>
      </fieldset>
      <fieldset>
        <legend>6. For how long (in your local time)</legend>
        <label>
          From (empty: now)
          <input
            type="datetime-local"
            value={validFrom}
            onChange={(e) => setValidFrom(e.target.value)}
          />
        </label>
        <label>
          Until (empty: until I revoke it)
          <input
            type="datetime-local"
            value={validUntil}
            onChange={(e) => setValidUntil(e.target.value)}
          />
        </label>
      </fieldset>
      <ErrorNotice error={error} help={signatureHelp(error)} />
      <button type="submit" disabled={busy}>
        {busy ? 'Writing to the ledger…' : 'Grant access'}
      </button>
    </form>
  );
}

export interface AccessEvent {
  id: string;
  at: string;
  actorId: string;
  action: string;
  purpose: string;
  decision: 'PERMIT' | 'DENY';
  breakGlass: boolean;
  reason: string | null;
  recordIds: string[];
  consentId: string | null;
}

interface Verification {
  ok: boolean;
  eventsChecked: number;
  permitsJustified: number;
  unanchoredEvents: number;
  problems: string[];
}

export function AccessLog({ patientId }: { patientId: string }) {
  const log = usePagedList<AccessEvent>(
    (after) =>
      gql<{ accessLog: Paged<AccessEvent> }>(
        `query($p: ID!, $after: String) { accessLog(patientId: $p, first: 100, after: $after) {
           items { id at actorId action purpose decision breakGlass reason recordIds consentId }
           nextCursor } }`,
        { p: patientId, after },
      ).then((d) => d.accessLog),
    [patientId],
  );
  const [verification, setVerification] = useState<Verification | null>(null);
  const [verifyError, setVerifyError] = useState<ApiError | null>(null);
  const [checking, setChecking] = useState(false);

  async function verify() {
    setChecking(true);
    setVerifyError(null);
    try {
      const { verifyAccessLog } = await gql<{ verifyAccessLog: Verification }>(
        `query($p: ID!) { verifyAccessLog(patientId: $p) { ok eventsChecked permitsJustified unanchoredEvents problems } }`,
        { p: patientId },
      );
      setVerification(verifyAccessLog);
    } catch (e) {
      setVerifyError(toApiError(e));
    } finally {
      setChecking(false);
    }
  }

  const items = log.items;
  return (
    <section aria-labelledby="log-h">
      <h2 id="log-h">Who read my records</h2>
      <div className="row">
        <button type="button" onClick={() => void log.first.reload()}>
          Refresh
        </button>
        <button type="button" onClick={() => void verify()} disabled={checking}>
          {checking ? 'Checking…' : 'Check against the ledger'}
        </button>
      </div>
      <div aria-live="polite" data-testid="verification">
        {verification &&
          (verification.ok ? (
            <p className="ok">
              Checked against the ledger: all {verification.permitsJustified} accesses justified (
              {verification.eventsChecked} events in an intact chain
              {verification.unanchoredEvents
                ? `; ${verification.unanchoredEvents} recent ${verification.unanchoredEvents === 1 ? 'one' : 'ones'} not yet anchored`
                : ''}
              ).
            </p>
          ) : (
            <div className="error" role="alert">
              <strong>The ledger check found problems:</strong>
              <ul>
                {verification.problems.map((p) => (
                  <li key={p}>{p}</li>
                ))}
              </ul>
            </div>
          ))}
      </div>
      <ErrorNotice error={log.first.error ?? verifyError} />
      {log.first.data && items.length === 0 && <p>Nobody has read your records yet.</p>}
      {items.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption>
              Newest first: {items.length} {items.length === 1 ? 'event' : 'events'}
              {log.hasOlder ? ', and older ones below' : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">When (UTC)</th>
                <th scope="col">Who</th>
                <th scope="col">What</th>
                <th scope="col">Outcome</th>
                <th scope="col">Justified by</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr
                  key={e.id}
                  className={e.breakGlass ? 'breakglass' : undefined}
                  data-testid="access-event"
                  data-id={e.id}
                  data-actor={e.actorId}
                  data-decision={e.decision}
                >
                  <td>{formatTime(e.at)}</td>
                  <td>{e.actorId}</td>
                  <td>
                    {e.action.toLowerCase()} for {e.purpose.toLowerCase()}
                    {e.recordIds.length ? ` (${e.recordIds.length} records)` : ''}
                  </td>
                  <td>{e.decision === 'PERMIT' ? 'Allowed' : 'Refused'}</td>
                  <td>
                    {e.breakGlass ? (
                      <strong>Emergency access: {e.reason}</strong>
                    ) : e.consentId ? (
                      <>
                        your grant <code>{short(e.consentId)}</code>
                      </>
                    ) : e.purpose === 'SELF' ? (
                      'you'
                    ) : (
                      '—'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorNotice error={log.older.error} />
      {log.hasOlder && (
        <button
          type="button"
          data-testid="older-events"
          aria-disabled={log.older.busy}
          onClick={() => void log.loadOlder()}
        >
          {log.older.busy ? 'Loading…' : 'Show older events'}
        </button>
      )}
    </section>
  );
}
