// The console's only way to the server: GraphQL at /graphql, the development sign-in route and
// the final model's download. The token lives in this module's memory alone: never in
// localStorage, sessionStorage, a cookie or the URL, so closing or reloading the tab signs out.

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

async function gqlBody<T>(query: string, variables: Record<string, unknown>) {
  const res = await send('/graphql', { query, variables }, true);
  try {
    return (await res.json()) as GraphQLBody<T>;
  } catch {
    throw new ApiError('INTERNAL', `Unexpected answer (HTTP ${res.status}).`);
  }
}

/** Runs one GraphQL operation; any error becomes an ApiError with the contract's code. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const body = await gqlBody<T>(query, variables);
  const first = body.errors?.[0];
  if (first) throw new ApiError(first.extensions?.code ?? 'INTERNAL', first.message);
  if (!body.data) throw new ApiError('INTERNAL', 'The answer held no data.');
  return body.data;
}

/**
 * Runs one GraphQL operation that may answer data and errors together (a listing with some
 * items withheld): the data with the errors beside it; with no data, the first error thrown.
 */
export async function gqlPartial<T>(
  query: string,
  variables: Record<string, unknown> = {},
): Promise<{ data: T; errors: ApiError[] }> {
  const body = await gqlBody<T>(query, variables);
  const errors = (body.errors ?? []).map(
    (e) => new ApiError(e.extensions?.code ?? 'INTERNAL', e.message),
  );
  if (!body.data) throw errors[0] ?? new ApiError('INTERNAL', 'The answer held no data.');
  return { data: body.data, errors };
}

/**
 * A file the API serves to a signed-in caller (a run's model): fetched with the bearer token
 * in the Authorization header, never in the URL, and handed back as a Blob to save.
 */
export async function download(path: string): Promise<Blob> {
  let res: Response;
  try {
    res = await fetch(path, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new ApiError('NETWORK', 'No answer from the server.');
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as GraphQLBody<never> & {
      message?: string;
      code?: string;
    };
    const first = body.errors?.[0];
    throw new ApiError(
      first?.extensions?.code ?? body.code ?? (res.status === 404 ? 'NOT_FOUND' : 'INTERNAL'),
      first?.message ?? body.message ?? `HTTP ${res.status}`,
    );
  }
  return res.blob();
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
