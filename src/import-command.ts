// `custodia import FILE --patient ID`: posts a FHIR R4 Bundle to a running API's importBundle.
// The patient id and the size of the request are checked first (the server's own limit), then
// the bundle with the server's own rules (bundle-plan), entry by entry, which is what the
// progress bar shows; an invalid entry stops it before anything is sent. Then
// the upload (a bar over the bytes), then the server's all-or-nothing import. A bar on a TTY,
// plain lines otherwise (logs, CI), on stderr; stdout gets one JSON line, the ImportReport.
import { SingleBar } from 'cli-progress';
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { CustodiaError } from './common/errors';
import { isUuid } from './common/ids';
import { MAX_IMPORT_BODY, MAX_IMPORT_BODY_BYTES } from './common/json-bodies';
import { planImport } from './records/import/bundle-plan';

export const IMPORT_MUTATION = `mutation($bundle: JSON!, $patientId: ID) {
  importBundle(bundle: $bundle, patientId: $patientId) { created updated unchanged skipped skippedTypes recordIds updatedIds unchangedIds } }`;

export interface ImportOptions {
  patient: string;
  url: string;
  token: string;
}

/** A failure with the contract's error code (printed as `CODE: message`, exit 1). */
export class ImportFailed extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Progress on stderr: a bar on a terminal, a line per tenth otherwise. */
class Progress {
  private bar?: SingleBar;
  private lastTenth = -1;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit: string,
  ) {
    if (process.stderr.isTTY) {
      this.bar = new SingleBar({
        stream: process.stderr,
        format: `${label.padEnd(10)} [{bar}] {percentage}% | {value}/{total} ${unit}`,
        hideCursor: true,
      });
      this.bar.start(total, 0);
    }
  }

  update(done: number): void {
    if (this.bar) return this.bar.update(done);
    const tenth = this.total === 0 ? 10 : Math.floor((done * 10) / this.total);
    if (tenth === this.lastTenth) return;
    this.lastTenth = tenth;
    process.stderr.write(`${this.label}: ${done}/${this.total} ${this.unit}\n`);
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** The API's GraphQL address from `--url`: http or https, said plainly otherwise. */
function graphqlUrl(url: string): URL {
  let target: URL | undefined;
  try {
    target = new URL(url);
  } catch {
    // said below
  }
  if (!target || (target.protocol !== 'http:' && target.protocol !== 'https:')) {
    const shown = url.length > 60 ? `${url.slice(0, 60)}…` : url;
    throw new ImportFailed(
      'BAD_USER_INPUT',
      `--url (or CUSTODIA_URL) must be the API's http:// or https:// address, not ${JSON.stringify(shown)}; nothing was read or sent.`,
    );
  }
  target.pathname = `${target.pathname.replace(/\/+$/, '')}/graphql`;
  return target;
}

/**
 * The bearer token as the header will carry it: a token read from a file keeps its line end
 * (CRLF too), which is dropped; anything else that a JWT cannot hold is refused, not sent.
 */
function bearer(token: string): string {
  const t = token.trim();
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(t)) {
    throw new ImportFailed(
      'UNAUTHENTICATED',
      'the token (--token or CUSTODIA_TOKEN) is not a JWT (three base64url parts joined by dots, on one line); nothing was read or sent.',
    );
  }
  return t;
}

export async function importFile(file: string, options: ImportOptions): Promise<unknown> {
  // Where it goes and with what, before minutes of reading and checking.
  const target = graphqlUrl(options.url);
  const token = bearer(options.token);
  // The server would answer an id it never minted as a patient the caller may not write to;
  // here it is only a mistyped argument, said as one before anything is read or sent.
  if (!isUuid(options.patient)) {
    throw new ImportFailed(
      'BAD_USER_INPUT',
      `patientId (--patient) must be a patient's id, a UUID as registerPatient answers it; nothing was read or sent.`,
    );
  }
  let bundle: unknown;
  try {
    bundle = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    throw new ImportFailed('BAD_USER_INPUT', `${file} is not a readable JSON file`);
  }
  // The request exactly as it will be sent (a pretty-printed file shrinks), measured against the
  // server's limit before minutes of checking entries and uploading end in a 413.
  const body = Buffer.from(
    JSON.stringify({ query: IMPORT_MUTATION, variables: { bundle, patientId: options.patient } }),
  );
  if (body.length > MAX_IMPORT_BODY_BYTES) {
    throw new ImportFailed(
      'BAD_USER_INPUT',
      `${file} makes a request of ${(body.length / 2 ** 20).toFixed(1)}MB, past the ${MAX_IMPORT_BODY.toUpperCase()} the server accepts for importBundle; split the bundle into several (each imports all or nothing). Nothing was checked or sent.`,
    );
  }
  const entries = (bundle as { entry?: unknown } | null)?.entry;
  const total = Array.isArray(entries) ? entries.length : 0;
  process.stderr.write('Loading the FHIR R4 definitions…\n');
  const checking = new Progress('Checking', total, 'entries');
  try {
    await planImport(bundle, options.patient, { onEntry: (done) => checking.update(done) });
  } catch (e) {
    if (e instanceof CustodiaError) throw new ImportFailed(e.code, e.message);
    throw e;
  } finally {
    checking.stop();
  }
  // Unreachable before or after the upload, the user gets the same code, not a stack trace.
  const unreachable = (e: Error): never => {
    throw new ImportFailed('UNAVAILABLE', `no answer from ${options.url}: ${e.message}`);
  };
  const { answer } = await post(target, body, token).catch(unreachable);
  process.stderr.write('Importing on the server (all entries or none)…\n');
  const json = await answer.catch(unreachable);
  const errors = (json as { errors?: { message: string; extensions?: { code?: string } }[] })
    .errors;
  if (errors?.length) {
    throw new ImportFailed(errors[0].extensions?.code ?? 'INTERNAL', errors[0].message);
  }
  return (json as { data: { importBundle: unknown } }).data.importBundle;
}

/** Sends the body in chunks (the bar follows them); resolves once sent, with the answer to come. */
function post(target: URL, body: Buffer, token: string): Promise<{ answer: Promise<unknown> }> {
  const client = target.protocol === 'https:' ? https : http;
  const uploading = new Progress('Uploading', Math.ceil(body.length / 1024), 'KiB');
  return new Promise((sent, failed) => {
    const answer = new Promise<unknown>((resolve, reject) => {
      // A request refused before it is sent (a header it cannot carry, say) throws here: it
      // fails the upload too, or the process would end with neither report nor error.
      const fail = (e: Error) => {
        uploading.stop();
        failed(e);
        reject(e);
      };
      let req: http.ClientRequest;
      try {
        req = client.request(
          target,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': body.length,
              authorization: `Bearer ${token}`,
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              try {
                resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
              } catch {
                reject(new Error(`HTTP ${res.statusCode} without a GraphQL answer`));
              }
            });
            res.on('error', reject);
          },
        );
      } catch (e) {
        fail(e as Error);
        return;
      }
      req.on('error', fail);
      const CHUNK = 64 * 1024;
      let offset = 0;
      const writeNext = (): void => {
        while (offset < body.length) {
          const chunk = body.subarray(offset, offset + CHUNK);
          offset += chunk.length;
          uploading.update(Math.ceil(offset / 1024));
          if (!req.write(chunk)) {
            req.once('drain', writeNext);
            return;
          }
        }
        req.end(() => {
          uploading.stop();
          sent({ answer });
        });
      };
      writeNext();
    });
    answer.catch(() => undefined);
  });
}
