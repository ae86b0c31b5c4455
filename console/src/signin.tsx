// How the console signs in, as the server says (/console/config.json): the development "sign in
// as" form, or OpenID Connect with the external identity provider, authorization code with PKCE
// (S256). Across the provider's redirect only the PKCE verifier, state and nonce are kept, in
// sessionStorage, and removed as soon as the provider answers; the tokens stay in memory.
import { ReactNode, useEffect, useRef, useState } from 'react';
import { ApiError, gql, Role, Session, setToken } from './api';
import { ErrorNotice, toApiError } from './common';

type SignInConfig =
  | { mode: 'dev' }
  | {
      mode: 'oidc';
      authorizationEndpoint: string;
      tokenEndpoint: string;
      clientId: string;
      scope: string;
    }
  | { mode: 'none' };
type OidcConfig = Extract<SignInConfig, { mode: 'oidc' }>;

/** Where the redirect's secrets wait for the provider's answer, in this tab only. */
const PENDING_KEY = 'custodia.oidc.pending';
const CONSOLE_ROLES: Role[] = ['PATIENT', 'CLINICIAN', 'RESEARCHER', 'ADMIN'];

interface Pending {
  state: string;
  verifier: string;
  nonce: string;
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

function redirectUri(): string {
  return `${location.origin}/console/`;
}

/** A JWT's claims, read for checking the nonce only: the API verifies the signature. */
function claimsOf(jwt: string): Record<string, unknown> | null {
  const part = jwt.split('.')[1];
  if (!part) return null;
  try {
    const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) =>
      c.charCodeAt(0),
    );
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function startOidc(config: OidcConfig): Promise<void> {
  const pending: Pending = {
    state: randomString(),
    verifier: randomString(),
    nonce: randomString(),
  };
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(pending.verifier));
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(config.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

const refused = (why: string) => new ApiError('UNAUTHENTICATED', why);

/** The provider's answer in this page's URL, if it is one: taken out of the URL at once. */
function takeCallback(): URLSearchParams | null {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  history.replaceState(null, '', location.pathname);
  return params;
}

async function finishOidc(config: OidcConfig, params: URLSearchParams): Promise<Session> {
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const error = params.get('error');
  if (error) {
    // Only the error's standard code: its description is the provider's free text.
    throw refused(`The identity provider did not sign you in (${error.replace(/[^a-z_]/g, '')}).`);
  }
  const pending = raw ? (JSON.parse(raw) as Pending) : null;
  if (!pending || params.get('state') !== pending.state) {
    throw refused('This sign-in answer does not belong to a sign-in started here. Sign in again.');
  }
  let res: Response;
  try {
    res = await fetch(config.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code') ?? '',
        redirect_uri: redirectUri(),
        client_id: config.clientId,
        code_verifier: pending.verifier,
      }),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError('NETWORK', 'The identity provider could not be reached.');
  }
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    id_token?: string;
    error?: string;
  };
  if (!res.ok) {
    throw refused(
      `The identity provider refused the sign-in code (${String(body.error ?? res.status).replace(/[^a-z_0-9]/g, '')}).`,
    );
  }
  if (body.id_token && claimsOf(body.id_token)?.nonce !== pending.nonce) {
    throw refused('The identity provider answered for another sign-in. Sign in again.');
  }
  // The access token is meant for the API; an ID token is the fallback of providers that
  // issue opaque access tokens (the API then must accept the client id as audience).
  const bearer =
    body.access_token && body.access_token.split('.').length === 3
      ? body.access_token
      : body.id_token;
  if (!bearer) throw refused('The identity provider answered no token.');
  setToken(bearer);
  try {
    const { me } = await gql<{
      me: { id: string; roles: Role[]; organizationId: string | null; patientId: string | null };
    }>(`query { me { id roles organizationId patientId } }`);
    const role = CONSOLE_ROLES.find((r) => me.roles.includes(r));
    if (!role) throw new ApiError('FORBIDDEN', 'Your account has no role that uses the console.');
    let patientId = me.patientId;
    if (role === 'PATIENT' && !patientId) {
      const { registerPatient } = await gql<{ registerPatient: { id: string } }>(
        `mutation($org: ID) { registerPatient(organizationId: $org) { id } }`,
        { org: me.organizationId },
      );
      patientId = registerPatient.id;
    }
    return { token: bearer, subject: me.id, role, org: me.organizationId ?? undefined, patientId };
  } catch (e) {
    setToken(null);
    throw e;
  }
}

let configLoad: Promise<SignInConfig> | null = null;
/** The provider's answer is handled once, however often the page renders. */
let callback: Promise<Session> | null = null;

function loadConfig(): Promise<SignInConfig> {
  configLoad ??= fetch('/console/config.json', { cache: 'no-store', credentials: 'omit' }).then(
    async (res) => {
      if (!res.ok) throw new ApiError('INTERNAL', `No sign-in settings (HTTP ${res.status}).`);
      return (await res.json()) as SignInConfig;
    },
    () => {
      configLoad = null;
      throw new ApiError('NETWORK', 'No answer from the server.');
    },
  );
  return configLoad;
}

/** The sign-in the server offers: `devForm` with the development issuer, else OpenID Connect. */
export function SignInGate({
  devForm,
  onSignedIn,
}: {
  devForm: ReactNode;
  onSignedIn: (s: Session) => void;
}) {
  const [config, setConfig] = useState<SignInConfig | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const signedIn = useRef(onSignedIn);
  signedIn.current = onSignedIn;

  useEffect(() => {
    let live = true;
    void (async () => {
      try {
        const c = await loadConfig();
        if (!live) return;
        setConfig(c);
        const params = c.mode === 'oidc' ? takeCallback() : null;
        if (c.mode === 'oidc' && (params || callback)) {
          setBusy(true);
          callback ??= finishOidc(c, params!);
          const session = await callback.finally(() => (callback = null));
          if (live) signedIn.current(session);
        }
      } catch (e) {
        if (live) setError(toApiError(e));
      } finally {
        if (live) setBusy(false);
      }
    })();
    return () => {
      live = false;
    };
  }, []);

  if (!config) {
    return error ? <ErrorNotice error={error} /> : <p aria-live="polite">Loading…</p>;
  }
  if (config.mode === 'dev') return <>{devForm}</>;
  if (config.mode === 'none') {
    return (
      <div className="panel signin">
        <h2>Sign in</h2>
        <p>
          This server trusts an external identity provider, but no OpenID Connect client is
          configured for the console (OIDC_CLIENT_ID and its endpoints). Ask the operator.
        </p>
      </div>
    );
  }
  return (
    <div className="panel signin">
      <h2 id="signin-h">Sign in</h2>
      <p className="muted">
        You sign in with your organisation&apos;s identity provider, then come back here.
      </p>
      <ErrorNotice error={error} />
      <button
        type="button"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          startOidc(config).catch((e: unknown) => {
            setError(toApiError(e));
            setBusy(false);
          });
        }}
      >
        {busy ? 'Signing in…' : 'Sign in with your identity provider'}
      </button>
    </div>
  );
}
