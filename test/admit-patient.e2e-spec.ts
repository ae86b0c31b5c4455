// Admitting at a second organisation a patient whom another registered: the same pseudonymous
// id, so that consent given anywhere governs the records this organisation holds of them.
// `custodia admit-patient` (a real child process) and the service it runs.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PatientsService } from '../src/patients';
import { errorOf } from './helpers/errors';
import { observation } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

const BIN = join(__dirname, '..', 'bin', 'custodia.js');
// A command starts the API against the suite's database (and may first compile the sources).
const CLI_TIMEOUT = 120_000;
const ME = '{ me { patientId } }';
const CREATE = `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id patientId } }`;

describe('admitting a patient registered by another organisation', () => {
  let api: TestApi;
  let patients: PatientsService;

  beforeAll(async () => {
    api = await TestApi.start();
    patients = api.server.app.get(PatientsService);
  });
  afterAll(() => api?.stop());

  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, [BIN, ...args], {
      env: {
        ...process.env,
        DATABASE_URL: api.config.databaseUrl,
        CUSTODIA_KEK: api.config.kek,
        CUSTODIA_DATA_DIR: api.config.dataDir,
        LOG_LEVEL: 'silent',
      },
      timeout: CLI_TIMEOUT,
    });
  const rows = async () =>
    (
      await api.db.query(
        'SELECT (SELECT count(*) FROM patients)::int AS p, (SELECT count(*) FROM users)::int AS u',
      )
    ).rows[0];

  it(
    'links the subject to the id through `custodia admit-patient`; the patient then writes records under it',
    async () => {
      const id = randomUUID();
      const { stdout } = await cli('admit-patient', '--sub', 'carol', '--patient', id);
      expect(stdout).toContain(`Admitted patient ${id}`);
      const carol = await api.token('carol', 'PATIENT');
      expect((await api.ok<{ me: { patientId: string } }>(ME, {}, carol)).me.patientId).toBe(id);
      const { createRecord } = await api.ok<{ createRecord: { patientId: string } }>(
        CREATE,
        { input: { resource: observation() } },
        carol,
      );
      expect(createRecord.patientId).toBe(id);
    },
    CLI_TIMEOUT,
  );

  it('is idempotent for the same link', async () => {
    const id = randomUUID();
    await patients.admit('dave', id);
    const before = await rows();
    await expect(patients.admit('dave', id)).resolves.toMatchObject({ id });
    expect(await rows()).toEqual(before);
  });

  it('refuses a malformed id, a subject linked to another patient, and a patient linked to another subject, writing nothing', async () => {
    const id = randomUUID();
    await patients.admit('erin', id);
    const before = await rows();
    expect((await errorOf(patients.admit('frank', 'not-a-uuid'))).code).toBe('BAD_USER_INPUT');
    expect((await errorOf(patients.admit('erin', randomUUID()))).code).toBe('CONFLICT');
    expect((await errorOf(patients.admit('frank', id))).code).toBe('CONFLICT');
    expect(await rows()).toEqual(before);
  });

  it(
    'exits 1 with the reason, and writes nothing, for a malformed id',
    async () => {
      const before = await rows();
      const failed = await cli('admit-patient', '--sub', 'gina', '--patient', 'nope').catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect(failed).toMatchObject({ code: 1 });
      expect((failed as { stderr: string }).stderr).toContain('patientId must be a patient id');
      expect(await rows()).toEqual(before);
    },
    CLI_TIMEOUT,
  );
});
