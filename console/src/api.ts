// The console's only way to the server: GraphQL at /graphql and the development sign-in route.
// The token lives in this module's memory alone: never in localStorage, sessionStorage, a
// cookie or the URL, so closing or reloading the tab signs out.

export type Role = 'PATIENT' | 'CLINICIAN' | 'RESEARCHER' | 'ADMIN';

export interface Session {
  token: string;
  subject: string;
  role: Role;
  org?: string;
  patientId?: string | null;
}

/** Plain words for each error code of the contract, with what to do about it. */
export const ERROR_HELP: Record<string, string> = {
  UNAUTHENTICATED: 'You are not signed in, or your session expired. Sign in again.',
  FORBIDDEN: 'Your role may not do this.',
  CONSENT_REQUIRED:
    'No active consent covers this. The patient must grant you access (or you may declare an emergency).',
  NOT_FOUND: 'Not found, or not visible to you.',
  BAD_USER_INPUT: 'Some input was not accepted. Check the form and try again.',
  CONFLICT: 'This conflicts with the current state (it may already have been done). Refresh.',
  LEDGER_UNAVAILABLE:
    'The ledger is unavailable right now, so nothing was changed. Try again shortly.',
  INTERNAL: 'The server failed unexpectedly. Try again; if it persists, tell the operator.',
  NETWORK: 'The server could not be reached. Check your connection and try again.',
};

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** What a person reads: the code's plain words, then the server's own message. */
  get help(): string {
    return ERROR_HELP[this.code] ?? ERROR_HELP.INTERNAL;
  }
}

let token: string | null = null;

export function setToken(value: string | null): void {
  token = value;
}

interface GraphQLBody<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

async function send(path: string, body: unknown, auth: boolean): Promise<Response> {
  try {
    return await fetch(path, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(auth && token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError('NETWORK', 'No answer from the server.');
  }
}

/** Runs one GraphQL operation; any error becomes an ApiError with the contract's code. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await send('/graphql', { query, variables }, true);
  let body: GraphQLBody<T>;
  try {
    body = (await res.json()) as GraphQLBody<T>;
  } catch {
    throw new ApiError('INTERNAL', `Unexpected answer (HTTP ${res.status}).`);
  }
  const first = body.errors?.[0];
  if (first) throw new ApiError(first.extensions?.code ?? 'INTERNAL', first.message);
  if (!body.data) throw new ApiError('INTERNAL', 'The answer held no data.');
  return body.data;
}

/** Development sign-in: the server mints a token for this subject, role and organisation. */
export async function devSignIn(subject: string, role: Role, org?: string): Promise<string> {
  const res = await send('/auth/dev-token', { sub: subject, role, ...(org ? { org } : {}) }, false);
  if (res.status === 404) {
    throw new ApiError(
      'NOT_FOUND',
      'Development sign-in is off: this server uses an external identity provider.',
    );
  }
  const body = (await res.json().catch(() => ({}))) as GraphQLBody<never> & { token?: string };
  if (!res.ok || !body.token) {
    const first = body.errors?.[0];
    throw new ApiError(
      first?.extensions?.code ?? 'INTERNAL',
      first?.message ?? `HTTP ${res.status}`,
    );
  }
  return body.token;
}
