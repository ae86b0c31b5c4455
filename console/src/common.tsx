// Small pieces every page uses: loading a query, running an action, showing an API error in
// plain words.
import { useCallback, useEffect, useState } from 'react';
import { ApiError } from './api';

export function toApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError('INTERNAL', String(e));
}

/**
 * An API error as a person should read it: what it means, the server's words, its code.
 * `help` says in a page's own words what a code means there (FORBIDDEN is not always a role).
 */
export function ErrorNotice({
  error,
  help,
}: {
  error: ApiError | null;
  help?: Partial<Record<string, string>>;
}) {
  if (!error) return null;
  return (
    <div role="alert" className="error" data-code={error.code}>
      <strong>{help?.[error.code] ?? error.help}</strong>
      <span className="detail">
        {error.message} <code>{error.code}</code>
      </span>
    </div>
  );
}

/**
 * What a listing left out: the server answered some items as errors beside the data (a record
 * it could not open or verify). Says how many and why, so that what is shown is not taken for
 * all there is; `help` words a code for what was left out, as ErrorNotice's does.
 */
export function WithheldNotice({
  errors,
  one,
  many,
  help,
}: {
  errors: ApiError[];
  one: string;
  many: string;
  help?: Partial<Record<string, string>>;
}) {
  if (errors.length === 0) return null;
  const helps = [...new Set(errors.map((e) => help?.[e.code] ?? e.help))];
  return (
    <div role="alert" className="error" data-testid="withheld">
      <strong>
        {errors.length === 1
          ? `1 ${one} could not be shown.`
          : `${errors.length} ${many} could not be shown.`}
      </strong>{' '}
      {helps.join(' ')}
      <ul className="detail">
        {errors.map((e, i) => (
          <li key={i}>
            {e.message} <code>{e.code}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => Promise<void>;
}

/** Runs `load` now and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const run = useCallback(load, deps);
  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setData(await run());
      setError(null);
    } catch (e) {
      setData(null);
      setError(toApiError(e));
    } finally {
      setLoading(false);
    }
  }, [run]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, loading, reload };
}

export interface Action {
  busy: boolean;
  error: ApiError | null;
  /** Runs `act` unless one is running (a second press is ignored); its failure lands in `error`. */
  run: (act: () => Promise<void>) => Promise<void>;
}

/** A mutation behind a button or form: busy while it runs, and the error it ended with. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = async (act: () => Promise<void>) => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await act();
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

/** Hands `blob` to the browser as a download named `name` (a link clicked, then let go). */
export function saveFile(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has handed the Blob to the download; the URL is not needed after it.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString('en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: 'UTC',
  });
}

export function short(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
