// The console: sign in, then the pages of the signed-in role. Which page is shown is state in
// memory, never the URL, so no patient id or other PHI lands in the address bar or history.
import { FormEvent, useEffect, useRef, useState } from 'react';
import { ApiError, devSignIn, gql, Role, Session, setToken } from './api';
import { ErrorNotice, toApiError } from './common';
import { Chart, EmergencySession, MyPatients } from './clinician';
import { AccessLog, Consents, MyRecords } from './patient';
import { MySettings } from './patient-settings';
import { MyStudies } from './patient-studies';
import { MyAiDecisions } from './patient-ai-decisions';
import { Studies } from './researcher';
import { SignInGate } from './signin';

type Page =
  | 'records'
  | 'consents'
  | 'access'
  | 'my-studies'
  | 'ai-decisions'
  | 'settings'
  | 'patients'
  | 'chart'
  | 'studies';

const PAGES: Record<Role, { id: Page; title: string }[]> = {
  PATIENT: [
    { id: 'records', title: 'My records' },
    { id: 'consents', title: 'My consents' },
    { id: 'access', title: 'Who read my records' },
    { id: 'my-studies', title: 'Studies' },
    { id: 'ai-decisions', title: 'AI decisions' },
    { id: 'settings', title: 'Settings and my data' },
  ],
  CLINICIAN: [
    { id: 'patients', title: 'My patients' },
    { id: 'chart', title: 'Patient chart' },
  ],
  RESEARCHER: [{ id: 'studies', title: 'Studies' }],
  ADMIN: [{ id: 'studies', title: 'Studies' }],
};

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [page, setPage] = useState<Page>('records');
  const [chartPatient, setChartPatient] = useState('');
  /** What the sign-in page says after a session ended on its own (erasure). */
  const [notice, setNotice] = useState('');
  const main = useRef<HTMLElement>(null);

  // Move focus to the page's content when the page changes, as a new page load would.
  useEffect(() => {
    main.current?.focus();
  }, [page, session]);

  function signedIn(s: Session) {
    setNotice('');
    setSession(s);
    setPage(PAGES[s.role][0].id);
  }

  function signOut() {
    setToken(null);
    setSession(null);
    // The next person at this screen starts on no one's chart.
    setChartPatient('');
  }

  if (!session) {
    return (
      <main ref={main} tabIndex={-1}>
        <h1>Custodia</h1>
        {notice && (
          <p role="status" className="ok" data-testid="signed-out-notice">
            {notice}
          </p>
        )}
        <SignInGate onSignedIn={signedIn} devForm={<SignIn onSignedIn={signedIn} />} />
      </main>
    );
  }
  const pages = PAGES[session.role];
  return (
    <>
      <a className="skip" href="#content">
        Skip to content
      </a>
      <header>
        <p className="brand">Custodia</p>
        <nav aria-label="Pages">
          <ul>
            {pages.map((p) => (
              <li key={p.id}>
                <button
                  type="button"
                  aria-current={page === p.id ? 'page' : undefined}
                  onClick={() => setPage(p.id)}
                >
                  {p.title}
                </button>
              </li>
            ))}
          </ul>
        </nav>
        <p className="who">
          {session.subject} · {session.role.toLowerCase()}
          {session.org ? ` · ${session.org}` : ''}{' '}
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </p>
      </header>
      <main id="content" ref={main} tabIndex={-1}>
        <h1 className="visually-hidden">{pages.find((p) => p.id === page)?.title}</h1>
        {/* Unmounted at sign-out, and so forgetting this session's emergencies. */}
        <EmergencySession>
          {page === 'records' && session.patientId && <MyRecords patientId={session.patientId} />}
          {page === 'consents' && session.patientId && <Consents patientId={session.patientId} />}
          {page === 'access' && session.patientId && <AccessLog patientId={session.patientId} />}
          {page === 'my-studies' && session.patientId && (
            <MyStudies patientId={session.patientId} />
          )}
          {page === 'ai-decisions' && session.patientId && (
            <MyAiDecisions patientId={session.patientId} />
          )}
          {page === 'settings' && session.patientId && (
            <MySettings
              patientId={session.patientId}
              onErased={() => {
                signOut();
                setNotice(
                  'Your data was erased: your records and keys are gone, every grant is revoked. You are signed out.',
                );
              }}
            />
          )}
          {page === 'patients' && (
            <MyPatients
              onOpen={(p) => {
                setChartPatient(p);
                setPage('chart');
              }}
            />
          )}
          {page === 'chart' && <Chart key={chartPatient} initialPatientId={chartPatient} />}
          {page === 'studies' && (
            <Studies viewer={{ subject: session.subject, role: session.role }} />
          )}
        </EmergencySession>
      </main>
    </>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [subject, setSubject] = useState('');
  const [role, setRole] = useState<Role>('PATIENT');
  const [org, setOrg] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const token = await devSignIn(subject.trim(), role, org.trim() || undefined);
      setToken(token);
      let patientId: string | null = null;
      if (role === 'PATIENT') {
        // A patient's profile is made on first sign-in (registerPatient is idempotent).
        const { registerPatient } = await gql<{ registerPatient: { id: string } }>(
          `mutation($org: ID) { registerPatient(organizationId: $org) { id } }`,
          { org: org.trim() || null },
        );
        patientId = registerPatient.id;
      }
      onSignedIn({ token, subject: subject.trim(), role, org: org.trim() || undefined, patientId });
    } catch (err) {
      setToken(null);
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel signin" onSubmit={(e) => void submit(e)} aria-labelledby="signin-h">
      <h2 id="signin-h">Sign in as (development)</h2>
      <p className="muted">
        This server signs its own development tokens. With an external identity provider this form
        is not offered.
      </p>
      <label>
        Subject (user id)
        <input
          required
          value={subject}
          onChange={(e) => setSubject(e.target.value)}
          autoComplete="username"
          pattern="\S+"
        />
      </label>
      <label>
        Role
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          <option value="PATIENT">Patient</option>
          <option value="CLINICIAN">Clinician</option>
          <option value="RESEARCHER">Researcher</option>
          <option value="ADMIN">Administrator</option>
        </select>
      </label>
      <label>
        Organisation (optional)
        <input value={org} onChange={(e) => setOrg(e.target.value)} autoComplete="organization" />
      </label>
      <ErrorNotice error={error} />
      <button type="submit" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}
