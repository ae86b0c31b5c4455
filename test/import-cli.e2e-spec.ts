// `custodia import FILE --patient ID` as a person runs it: a child process of bin/custodia.js
// posting to a running API; progress on stderr (plain lines, as stderr is no TTY here), the
// report on stdout, exit 1 with the error code and the failing entry when the bundle is bad.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpusBundle } from './helpers/fhir-bundle';
import { TestApi } from './helpers/test-api';

const BIN = join(__dirname, '..', 'bin', 'custodia.js');
/** The first command may compile the sources (bin/custodia.js does that after a change). */
const COMMAND_TIMEOUT = 180_000;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: join(__dirname, '..'),
        timeout: COMMAND_TIMEOUT,
        env: { ...process.env, CUSTODIA_TOKEN: '' },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('custodia import', () => {
  let api: TestApi;
  let dir: string;
  let token: string;
  let patientId: string;
  const count = async () =>
    Number(
      (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [patientId]))
        .rows[0].count,
    );

  beforeAll(async () => {
    api = await TestApi.start();
    dir = await mkdtemp(join(tmpdir(), 'custodia-import-'));
    token = await api.token('frida', 'PATIENT');
    patientId = (
      await api.ok<{ registerPatient: { id: string } }>(
        'mutation { registerPatient { id } }',
        {},
        token,
      )
    ).registerPatient.id;
  });
  /** `custodia import FILE --patient <patientId>` against the test API, with that token. */
  const importAs = (
    file: string,
    bearer: string,
    { patient = patientId, url = api.url }: { patient?: string; url?: string } = {},
  ) => run(['import', file, '--patient', patient, '--url', url, '--token', bearer]);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await api?.stop();
  });

  it(
    'exits 1 naming the invalid entry and its code, having written nothing',
    async () => {
      const bundle = corpusBundle();
      bundle.entry[12].resource.status = 'bogus';
      const file = join(dir, 'invalid.json');
      await writeFile(file, JSON.stringify(bundle));
      const out = await importAs(file, token);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/custodia: BAD_USER_INPUT: entry\[12\]/);
      expect(out.stdout).toBe('');
      expect(await count()).toBe(0);
    },
    COMMAND_TIMEOUT,
  );

  it(
    "exits 1 with the server's code when the token may not import for that patient",
    async () => {
      const other = await api.token('gustav', 'PATIENT');
      await api.ok('mutation { registerPatient { id } }', {}, other);
      const file = join(dir, 'bundle.json');
      await writeFile(file, JSON.stringify(corpusBundle()));
      const out = await importAs(file, other);
      expect(out.code).toBe(1);
      expect(out.stderr).toContain('custodia: CONSENT_REQUIRED:');
      expect(await count()).toBe(0);
    },
    COMMAND_TIMEOUT,
  );

  it(
    'exits 1 with BAD_USER_INPUT naming patientId when --patient is not a patient id, sending nothing',
    async () => {
      const file = join(dir, 'for-no-one.json');
      await writeFile(file, JSON.stringify(corpusBundle()));
      const out = await importAs(file, token, { patient: 'not-a-uuid' });
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/custodia: BAD_USER_INPUT: patientId \(--patient\) must be/);
      expect(out.stderr).not.toContain('Checking');
      expect(out.stdout).toBe('');
      expect(await count()).toBe(0);
    },
    COMMAND_TIMEOUT,
  );

  it(
    "exits 1 at once, before checking entries or uploading, when the request would pass the server's limit",
    async () => {
      // Far more than MAX_IMPORT_BODY_BYTES (64 MiB) once sent: 70 MB of narrative.
      const bundle = corpusBundle();
      const div = `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(70_000_000)}</div>`;
      bundle.entry[1].resource.text = { status: 'generated', div };
      const file = join(dir, 'oversized.json');
      await writeFile(file, JSON.stringify(bundle));
      const out = await importAs(file, token);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(
        /custodia: BAD_USER_INPUT: .*oversized\.json makes a request of \d+\.\dMB, past the 64MB the server accepts for importBundle; split the bundle/,
      );
      expect(out.stderr).not.toMatch(/Loading|Checking|Uploading/);
      expect(out.stdout).toBe('');
      expect(await count()).toBe(0);
    },
    COMMAND_TIMEOUT,
  );

  it(
    'exits 1 with UNAVAILABLE, not a stack trace, when no API answers at the URL',
    async () => {
      const file = join(dir, 'unsent.json');
      await writeFile(file, JSON.stringify(corpusBundle()));
      const out = await importAs(file, token, { url: 'http://127.0.0.1:1' });
      expect(out.code).toBe(1);
      expect(out.stderr).toContain('custodia: UNAVAILABLE: no answer from http://127.0.0.1:1');
      expect(out.stdout).toBe('');
    },
    COMMAND_TIMEOUT,
  );

  it(
    'exits 1 at once, sending nothing, when --url is no http(s) address or the token no JWT',
    async () => {
      const file = join(dir, 'misaddressed.json');
      await writeFile(file, JSON.stringify(corpusBundle()));
      for (const url of [
        'ftp://localhost:3000',
        'file:///tmp/x',
        'ws://localhost:3000',
        'nowhere',
      ]) {
        const out = await importAs(file, token, { url });
        expect(out.code).toBe(1);
        expect(out.stderr).toMatch(
          /custodia: BAD_USER_INPUT: --url \(or CUSTODIA_URL\) must be the API's http:\/\/ or https:\/\/ address/,
        );
        expect(out.stderr).not.toMatch(/Loading|Checking|Uploading/);
        expect(out.stdout).toBe('');
      }
      const split = `${token.slice(0, 20)}\n${token.slice(20)}`;
      const out = await importAs(file, split);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/custodia: UNAUTHENTICATED: the token .* is not a JWT/);
      // Nothing of the token is echoed.
      expect(out.stderr).not.toContain(token.slice(0, 20));
      expect(await count()).toBe(0);
    },
    COMMAND_TIMEOUT,
  );

  it(
    'imports the bundle through the API, showing its progress, and prints the report',
    async () => {
      const bundle = corpusBundle();
      const file = join(dir, 'bundle.json');
      await writeFile(file, JSON.stringify(bundle, null, 2));
      // A token read from a file written on Windows keeps its CRLF: taken without it.
      const out = await importAs(file, `${token}\r\n`);
      expect(out.stderr).not.toMatch(/custodia: [A-Z_]+:/);
      expect(out.code).toBe(0);
      const n = bundle.entry.length;
      expect(out.stderr).toContain(`Checking: ${n}/${n} entries`);
      expect(out.stderr).toMatch(/Uploading: (\d+)\/\1 KiB/);
      const report = JSON.parse(out.stdout) as { created: number; skippedTypes: string[] };
      expect(report).toMatchObject({
        created: n - 2,
        skippedTypes: ['Organization', 'Practitioner'],
      });
      expect(await count()).toBe(n - 2);
    },
    COMMAND_TIMEOUT,
  );
});
