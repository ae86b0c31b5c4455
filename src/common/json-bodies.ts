// JSON request bodies. Every request may send up to MAX_BODY; a FHIR Bundle for importBundle
// may be larger (a real Synthea bundle of ~1,000 entries is 1–3 MB), but only when the caller
// has authenticated as a PATIENT or CLINICIAN (verified before a byte of the body is parsed)
// and the document asks for importBundle alone: an anonymous client, or any other operation,
// still gets 413 past MAX_BODY. Depth and text are checked later for every argument alike
// (WellFormedInputPipe), and the document's own size before it is parsed.
import type { NextFunction, Request, Response } from 'express';
import { json } from 'express';
import { Kind, parse } from 'graphql';
import type { Actor } from '../auth/actor';
import { sendError } from './error-response';

/** The largest request body accepted (a FHIR resource with room to spare). */
export const MAX_BODY = '1mb';
export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * The largest importBundle request body: room for an export of MAX_BUNDLE_ENTRIES records at
 * the 1–1.3 kB a Synthea record takes (45,000 of them measured 48 MB), so that a patient's own
 * export imports whole.
 */
export const MAX_IMPORT_BODY = '64mb';
export const MAX_IMPORT_BODY_BYTES = 64 * 1024 * 1024;

const IMPORT_ROLES = ['PATIENT', 'CLINICIAN'];

export interface JsonBodyOptions {
  /** Verifies a bearer token (rejecting when it does not verify). */
  verify(token: string): Promise<Actor>;
  /** The document size limit the GraphQL route enforces on its own. */
  maxTokens: number;
}

export function jsonBodies(options: JsonBodyOptions) {
  const small = json({ limit: MAX_BODY });
  const large = json({ limit: MAX_IMPORT_BODY });
  return (req: Request, res: Response, next: NextFunction): void => {
    const length = Number(req.headers['content-length']);
    if (req.method !== 'POST' || req.path !== '/graphql' || !(length > MAX_BODY_BYTES)) {
      small(req, res, next);
      return;
    }
    void importer(req, options).then((actor) => {
      if (!actor) return small(req, res, next);
      // The guard reuses the verified caller instead of verifying again.
      (req as { actor?: Actor }).actor = actor;
      large(req, res, (err?: unknown) => {
        if (err) return next(err);
        if (!importOnly(req.body, options.maxTokens)) return tooLarge(res);
        next();
      });
    }, next);
  };
}

/**
 * The caller whose bearer token verifies, or null (no token, or one that does not verify):
 * what a body parser asks before it reads a larger body than anyone may send.
 */
export async function verifiedCaller(
  req: Request,
  verify: (token: string) => Promise<Actor>,
): Promise<Actor | null> {
  const token = req.headers.authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  return token ? verify(token).catch(() => null) : null;
}

/** The caller, when the bearer token verifies and admits an import; null otherwise. */
async function importer(req: Request, options: JsonBodyOptions): Promise<Actor | null> {
  const actor = await verifiedCaller(req, options.verify);
  return actor && actor.roles.some((r) => IMPORT_ROLES.includes(r)) ? actor : null;
}

/** Whether the body's document is one mutation selecting importBundle and nothing else. */
function importOnly(body: unknown, maxTokens: number): boolean {
  const query = (body as { query?: unknown } | null)?.query;
  if (typeof query !== 'string') return false;
  try {
    const doc = parse(query, { maxTokens });
    if (doc.definitions.length !== 1) return false;
    const op = doc.definitions[0];
    if (op.kind !== Kind.OPERATION_DEFINITION || op.operation !== 'mutation') return false;
    const [field, ...more] = op.selectionSet.selections;
    return more.length === 0 && field.kind === Kind.FIELD && field.name.value === 'importBundle';
  } catch {
    return false;
  }
}

/** An importBundle body past even the import limit. */
export function importTooLarge(res: Response): void {
  sendError(
    res,
    413,
    `Request body exceeds ${MAX_IMPORT_BODY.toUpperCase()}, the largest importBundle accepted; split the bundle into several (each imports all or nothing).`,
    'BAD_USER_INPUT',
  );
}

export function tooLarge(res: Response): void {
  sendError(
    res,
    413,
    `Request body exceeds ${MAX_BODY.toUpperCase()}; send smaller resources, one per request (only importBundle, for a PATIENT or CLINICIAN, takes up to ${MAX_IMPORT_BODY.toUpperCase()}).`,
    'BAD_USER_INPUT',
  );
}
