// The patient's studies: the catalogue, joining (a TRAIN grant to the study) and leaving (its
// revocation), and the rounds in which training nodes used the patient's records, from the
// patient's access log. Runs are not public, but each TRAIN event (its reason sealed for this
// patient alone) names the run and round that used their records, so the page shows them.
import { useState } from 'react';
import { ApiError, gql } from './api';
import { namedCode } from './clinical-codes';
import { ErrorNotice, formatTime, short, toApiError, useLoad } from './common';
import { AccessEvent, Grant, GRANT_FIELDS } from './patient';
import { allPages } from './paging';
import { revocationSignature, signatureHelp, signedGrant } from './signing';

interface Study {
  id: string;
  title: string;
  features: string[];
  label: string;
  createdAt: string;
}

/** A TRAIN event with the study, run and round it belonged to (AccessEvent.trainingUse). */
interface TrainingEvent extends AccessEvent {
  trainingUse: { studyId: string; runId: string; round: number } | null;
}

/** A grant that is a study membership: the study may train on the patient's records. */
function isMembership(g: Grant, studyId: string): boolean {
  return g.grantee.type === 'STUDY' && g.grantee.id === studyId && g.actions.includes('TRAIN');
}

interface StudiesData {
  studies: Study[];
  grants: Grant[];
  uses: TrainingEvent[];
}

async function loadStudies(patientId: string): Promise<StudiesData> {
  const [{ studies }, { consents }, log] = await Promise.all([
    gql<{ studies: Study[] }>(`query { studies { id title features label createdAt } }`),
    gql<{ consents: Grant[] }>(`query { consents { ${GRANT_FIELDS} } }`),
    allPages<TrainingEvent>((after) =>
      gql<{ accessLog: { items: TrainingEvent[]; nextCursor: string | null } }>(
        `query($p: ID!, $after: String) { accessLog(patientId: $p, first: 100, after: $after) {
           items { id at actorId action purpose decision breakGlass reason recordIds consentId
             trainingUse { studyId runId round } }
           nextCursor } }`,
        { p: patientId, after },
      ).then((d) => d.accessLog),
    ),
  ]);
  const uses = log.filter((e) => e.action === 'TRAIN' && e.decision === 'PERMIT');
  return { studies, grants: consents, uses };
}

export function MyStudies({ patientId }: { patientId: string }) {
  const loaded = useLoad(() => loadStudies(patientId), [patientId]);
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [status, setStatus] = useState('');

  async function act(study: Study, change: () => Promise<unknown>, done: string) {
    if (busy) return;
    setBusy(study.id);
    setActionError(null);
    setStatus('');
    try {
      await change();
      await loaded.reload();
      setStatus(done);
    } catch (e) {
      setActionError(toApiError(e));
    } finally {
      setBusy(null);
    }
  }

  const join = (study: Study) =>
    act(
      study,
      async () =>
        gql(`mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id status } }`, {
          input: await signedGrant(patientId, {
            granteeType: 'STUDY',
            granteeId: study.id,
            purpose: 'RESEARCH',
            actions: ['TRAIN'],
          }),
        }),
      `You joined “${study.title}”; your grant is on the ledger.`,
    );

  const leave = (study: Study, active: Grant[]) =>
    act(
      study,
      async () => {
        for (const g of active) {
          await gql(
            `mutation($id: ID!, $s: String) { revokeConsent(id: $id, signature: $s) { id status } }`,
            { id: g.id, s: await revocationSignature(patientId, g.id) },
          );
        }
      },
      `You left “${study.title}”; its training nodes may no longer use your records.`,
    );

  const data = loaded.data;
  return (
    <section aria-labelledby="studies-h">
      <h2 id="studies-h">Studies</h2>
      <p>
        Joining a study lets its model learn from your records: your organisation’s training node
        reads them where they are and sends the study only a model update. Leaving stops any later
        round from using them; a round that already did keeps what it learnt.
      </p>
      <p aria-live="polite" className="status" data-testid="studies-status">
        {status}
      </p>
      <ErrorNotice error={loaded.error ?? actionError} help={signatureHelp(actionError)} />
      {loaded.loading && !data && <p aria-live="polite">Loading…</p>}
      {data && data.studies.length === 0 && <p>There are no studies yet.</p>}
      {data && data.studies.length > 0 && (
        <ul className="cards" aria-label="Studies">
          {data.studies.map((study) => {
            const grants = data.grants.filter((g) => isMembership(g, study.id));
            const active = grants.filter((g) => g.status === 'ACTIVE');
            // Unsigned while the patient accepts only signed grants: not in force, but standing
            // (in force again if they turn signed-only off) until revoked.
            const suspended = grants.filter((g) => g.status === 'SUSPENDED');
            // The newest membership grant says where the patient stands now.
            const latest = [...grants].sort((a, b) => b.validFrom.localeCompare(a.validFrom))[0];
            const grantIds = new Set(grants.map((g) => g.id));
            const uses = data.uses.filter((e) => e.consentId && grantIds.has(e.consentId));
            return (
              <li key={study.id} className="card" data-testid="study" data-study={study.id}>
                <h3>{study.title}</h3>
                <p>
                  Learns to predict {namedCode(study.label)} from{' '}
                  {study.features.map(namedCode).join(', ')}. Started {formatTime(study.createdAt)}.
                </p>
                <p>
                  You:{' '}
                  {latest ? (
                    <>
                      {latest.status === 'ACTIVE' ? 'joined' : 'not a member'} (your grant{' '}
                      <code>{short(latest.id)}</code> is{' '}
                      <span
                        className={`badge badge-${latest.status.toLowerCase()}`}
                        data-testid="study-grant-status"
                      >
                        {latest.status}
                      </span>
                      )
                    </>
                  ) : (
                    'not joined'
                  )}
                </p>
                {/* One button whichever it says, never disabled while busy: the keyboard's focus
                    stays on it from Join to Leave and back. */}
                {active.length > 0 ? (
                  <button
                    type="button"
                    className="danger"
                    aria-disabled={busy === study.id}
                    onClick={() => void leave(study, [...active, ...suspended])}
                  >
                    {busy === study.id ? 'Writing to the ledger…' : 'Leave'}
                    <span className="visually-hidden"> the study {study.title}</span>
                  </button>
                ) : (
                  <button
                    type="button"
                    aria-disabled={busy === study.id}
                    onClick={() => void join(study)}
                  >
                    {busy === study.id ? 'Writing to the ledger…' : 'Join'}
                    <span className="visually-hidden"> the study {study.title}</span>
                  </button>
                )}
                {active.length === 0 && suspended.length > 0 && (
                  <button
                    type="button"
                    className="danger"
                    aria-disabled={busy === study.id}
                    onClick={() => void leave(study, suspended)}
                  >
                    Withdraw the suspended grant
                    <span className="visually-hidden"> to the study {study.title}</span>
                  </button>
                )}
                <h4>Used in training</h4>
                {uses.length === 0 ? (
                  <p className="muted" data-testid="training-use-none">
                    Your records have not been used in this study’s training.
                  </p>
                ) : (
                  <ul data-testid="training-uses">
                    {uses.map((e) => {
                      const use = e.trainingUse;
                      const title = use && data.studies.find((s) => s.id === use.studyId)?.title;
                      return (
                        <li key={e.id} data-testid="training-use">
                          {use ? (
                            <>
                              Used in round {use.round} of run{' '}
                              <code title={use.runId}>{short(use.runId)}</code> of{' '}
                              {title ?? `study ${short(use.studyId)}`} on{' '}
                            </>
                          ) : (
                            'Used in training on '
                          )}
                          <time dateTime={e.at}>{formatTime(e.at)}</time> by training node{' '}
                          {e.actorId} ({e.recordIds.length}{' '}
                          {e.recordIds.length === 1 ? 'record' : 'records'})
                        </li>
                      );
                    })}
                  </ul>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
