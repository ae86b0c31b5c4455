// The patient's side of the web console in a real browser (Debian's Chromium, playwright-core)
// against a real API: the record timeline, joining and leaving a study and seeing a training
// node's use of the records, emergency access on and off, and erasure behind a typed
// confirmation. What the page shows is checked against the API; every page with axe-core.
import { corpusBundle } from './helpers/fhir-bundle';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { BrowserContext, Page } from 'playwright-core';
import { RecordsService } from '../src/records';
import {
  checkPage,
  ConsoleBrowser,
  goTo,
  sidewaysOverflow,
  signIn,
} from './helpers/console-browser';
import { condition, observation } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

interface ApiGrant {
  id: string;
  grantee: { type: string; id: string };
  purpose: string;
  actions: string[];
  status: string;
}

describe('the patient’s pages of the web console', () => {
  let api: TestApi;
  let browser: ConsoleBrowser;
  let context: BrowserContext;
  let page: Page;
  let token: string;
  let patientId: string;
  let studyId: string;
  /** Record ids by what they are, created in an order unlike their clinical dates. */
  const ids: Record<string, string> = {};

  const dated = <T extends object>(resource: T, field: string, date: string) => ({
    ...resource,
    [field]: `${date}T09:00:00Z`,
  });

  async function studyGrants(): Promise<ApiGrant[]> {
    const { consents } = await api.ok<{ consents: ApiGrant[] }>(
      `query { consents { id grantee { type id } purpose actions status } }`,
      {},
      token,
    );
    return consents.filter((g) => g.grantee.type === 'STUDY' && g.grantee.id === studyId);
  }

  const study = () => page.locator(`[data-testid=study][data-study="${studyId}"]`);

  beforeAll(async () => {
    api = await TestApi.start();
    browser = await ConsoleBrowser.launch(api.url);
    context = await browser.context();

    token = await api.token('paula', 'PATIENT');
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      `mutation { registerPatient(displayName: "Paula") { id } }`,
      {},
      token,
    );
    patientId = registerPatient.id;
    const resources: [string, Record<string, unknown>][] = [
      ['hba1c-may', dated(observation('4548-4', 7.2, '%'), 'effectiveDateTime', '2025-05-20')],
      ['diabetes', dated(condition('44054006'), 'onsetDateTime', '2023-08-10')],
      ['glucose-nov', dated(observation('2345-7', 6.1), 'effectiveDateTime', '2024-11-03')],
      ['hypertension', dated(condition('38341003'), 'onsetDateTime', '2021-02-01')],
      ['hba1c-jan', dated(observation('4548-4', 7.9, '%'), 'effectiveDateTime', '2025-01-15')],
    ];
    for (const [name, resource] of resources) {
      const { createRecord } = await api.ok<{ createRecord: { id: string } }>(
        `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id } }`,
        { input: { resource } },
        token,
      );
      ids[name] = createRecord.id;
    }
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation { createStudy(input: { title: "Type 2 diabetes risk", features: ["2345-7", "4548-4"],
         label: "44054006" }) { id } }`,
      {},
      await api.token('rosa', 'RESEARCHER'),
    );
    studyId = createStudy.id;

    page = await browser.open(context);
    await signIn(page, 'paula', 'PATIENT');
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('shows the records as a timeline: grouped by type, each group in order of clinical date, with integrity', async () => {
    // The clinical dates as the API holds them: the order the page must follow.
    const { records } = await api.ok<{
      records: { items: { id: string; resourceType: string; effectiveAt: string }[] };
    }>(
      `query($p: ID!) { records(patientId: $p) { items { id resourceType effectiveAt } } }`,
      { p: patientId },
      token,
    );
    const byType = (type: string) =>
      records.items
        .filter((r) => r.resourceType === type)
        .sort((a, b) => a.effectiveAt.localeCompare(b.effectiveAt));
    expect(byType('Condition').map((r) => r.id)).toEqual([ids.hypertension, ids.diabetes]);
    expect(byType('Observation').map((r) => r.id)).toEqual([
      ids['glucose-nov'],
      ids['hba1c-jan'],
      ids['hba1c-may'],
    ]);

    const groups = page.getByTestId('timeline-group');
    await groups.first().waitFor();
    expect(await groups.evaluateAll((gs) => gs.map((g) => g.getAttribute('data-type')))).toEqual([
      'Condition',
      'Observation',
    ]);
    for (const type of ['Condition', 'Observation']) {
      const items = page.locator(
        `[data-testid=timeline-group][data-type=${type}] [data-testid=timeline-item]`,
      );
      const shown = await items.evaluateAll((lis) =>
        lis.map((li) => ({
          id: li.getAttribute('data-record'),
          at: li.querySelector('time')?.getAttribute('datetime'),
          integrity: li.querySelector('[data-testid=timeline-integrity]')?.textContent,
        })),
      );
      expect(shown).toEqual(
        byType(type).map((r) => ({
          id: r.id,
          at: r.effectiveAt,
          integrity: 'Verified against the ledger',
        })),
      );
    }
    await expect(page.locator('[data-type=Observation] summary').textContent()).resolves.toBe(
      'Observation (3 records)',
    );
    await checkPage(page, 'patient-timeline');
  });

  it('opens and closes a timeline group from the keyboard', async () => {
    const group = page.locator('[data-testid=timeline-group][data-type=Condition]');
    const isOpen = () => group.evaluate((d) => d.hasAttribute('open'));
    await group.locator('summary').focus();
    await page.keyboard.press('Enter');
    await expect(isOpen()).resolves.toBe(false);
    await page.keyboard.press('Space');
    await expect(isOpen()).resolves.toBe(true);
  });

  it('shows records, studies and settings at phone width without sideways scrolling', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.getByTestId('timeline-group').first().waitFor();
    expect(await sidewaysOverflow(page)).toEqual({ overflow: 0, wide: [] });
    await checkPage(page, 'phone-patient-timeline');
    await goTo(page, 'Studies');
    await page.getByTestId('study').first().waitFor();
    expect(await sidewaysOverflow(page)).toEqual({ overflow: 0, wide: [] });
    await goTo(page, 'Settings and my data');
    await page.getByTestId('emergency-state').waitFor();
    expect(await sidewaysOverflow(page)).toEqual({ overflow: 0, wide: [] });
    await page.setViewportSize({ width: 1100, height: 800 });
  });

  it('joins a study, then leaves it: the grant is ACTIVE, then REVOKED, on the page and in the API', async () => {
    await goTo(page, 'Studies');
    await study().getByRole('heading', { name: 'Type 2 diabetes risk' }).waitFor();
    await expect(study().textContent()).resolves.toContain(
      'Learns to predict Diabetes mellitus type 2 (44054006) from Glucose [Mass/volume] in Serum or Plasma (2345-7), Hemoglobin A1c/Hemoglobin.total in Blood (4548-4).',
    );
    expect(await studyGrants()).toEqual([]);

    await study().getByRole('button', { name: 'Join the study Type 2 diabetes risk' }).click();
    await study().getByTestId('study-grant-status').getByText('ACTIVE').waitFor();
    const [joined] = await studyGrants();
    expect(joined).toMatchObject({
      purpose: 'RESEARCH',
      actions: ['TRAIN'],
      status: 'ACTIVE',
    });
    await checkPage(page, 'patient-studies-joined');

    // From the keyboard: the focus stays on the button, which now says Leave.
    const leave = study().getByRole('button', { name: 'Leave the study Type 2 diabetes risk' });
    await leave.focus();
    await page.keyboard.press('Enter');
    await study().getByTestId('study-grant-status').getByText('REVOKED').waitFor();
    expect(await studyGrants()).toEqual([{ ...joined, status: 'REVOKED' }]);
    const join = study().getByRole('button', { name: 'Join the study Type 2 diabetes risk' });
    await expect(join.evaluate((e) => e.matches(':focus'))).resolves.toBe(true);
  });

  it('shows when a training node used my records for the study', async () => {
    await expect(study().getByTestId('training-use-none').count()).resolves.toBe(1);
    await study().getByRole('button', { name: 'Join the study Type 2 diabetes risk' }).click();
    await study().getByTestId('study-grant-status').getByText('ACTIVE').waitFor();
    const grant = (await studyGrants()).find((g) => g.status === 'ACTIVE')!;
    // What a site's training node writes to the access log for each patient it trained on.
    const runId = randomUUID();
    const used = [ids['glucose-nov'], ids['hba1c-jan'], ids['hba1c-may']];
    await api.server.app
      .get(RecordsService)
      .logTrainingUse('node-site-1', { studyId, runId, round: 4 }, [
        { patientId, recordIds: used, grantId: grant.id },
      ]);
    const { accessLog } = await api.ok<{
      accessLog: {
        items: { action: string; actorId: string; at: string; consentId: string; reason: string }[];
      };
    }>(
      `query($p: ID!) { accessLog(patientId: $p) { items { action actorId at consentId reason } } }`,
      { p: patientId },
      token,
    );
    const train = accessLog.items.filter((e) => e.action === 'TRAIN');
    expect(train).toEqual([
      {
        action: 'TRAIN',
        actorId: 'node-site-1',
        at: expect.any(String),
        consentId: grant.id,
        reason: `Training run ${runId}, round 4 (study ${studyId})`,
      },
    ]);

    // Opening the page again reads the log afresh.
    await goTo(page, 'My records');
    await goTo(page, 'Studies');
    const use = study().getByTestId('training-use');
    await use.waitFor();
    expect(await use.count()).toBe(1);
    await expect(use.textContent()).resolves.toMatch(
      new RegExp(
        `^Used in round 4 of run ${runId.slice(0, 8)}… of Type 2 diabetes risk on ` +
          '\\d{1,2} \\w{3} \\d{4}, \\d\\d:\\d\\d by training node node-site-1 \\(3 records\\)$',
      ),
    );
    await expect(use.locator('code').getAttribute('title')).resolves.toBe(runId);
    await expect(use.locator('time').getAttribute('datetime')).resolves.toBe(train[0].at);
    await checkPage(page, 'patient-studies-used');
  });

  it('says in plain words why leaving failed when the grant was revoked elsewhere', async () => {
    const grant = (await studyGrants()).find((g) => g.status === 'ACTIVE')!;
    await api.ok(`mutation($id: ID!) { revokeConsent(id: $id) { id } }`, { id: grant.id }, token);
    await study().getByRole('button', { name: 'Leave the study Type 2 diabetes risk' }).click();
    const alert = page.locator('[role=alert][data-code=CONFLICT]');
    await alert.waitFor();
    await expect(alert.textContent()).resolves.toContain(
      'This conflicts with the current state (it may already have been done). Refresh.',
    );
    await checkPage(page, 'patient-studies-error');
  });

  it('saves the name clinicians see, as the API then says', async () => {
    await goTo(page, 'Settings and my data');
    const field = page.getByLabel('Name shown to clinicians');
    await field.fill('Patricia Quinn');
    await page.getByRole('button', { name: 'Save name' }).click();
    await expect(
      page.getByTestId('name-status').filter({ hasText: 'Saved' }).textContent(),
    ).resolves.toContain('clinicians you give access see this name');
    const { patient } = await api.ok<{ patient: { displayName: string | null } }>(
      'query($p: ID!) { patient(id: $p) { displayName } }',
      { p: patientId },
      token,
    );
    expect(patient.displayName).toBe('Patricia Quinn');
  });

  let recordsBeforeErasure = 5;
  it('imports a FHIR bundle from elsewhere, all or nothing, and says what it took', async () => {
    const count = async () =>
      Number(
        (await api.db.query('SELECT count(*) FROM records WHERE patient_id = $1', [patientId]))
          .rows[0].count,
      );
    const bundle = corpusBundle();
    // Without its Patient: the records then name the patient the bundle is about.
    bundle.entry = bundle.entry.filter((e) => e.resource.resourceType !== 'Patient');
    const dir = await mkdtemp(join(tmpdir(), 'console-import-'));
    try {
      const bad = join(dir, 'bad.json');
      const broken = structuredClone(bundle);
      const i = broken.entry.findIndex((e) => e.resource.resourceType === 'Observation');
      (broken.entry[i].resource as { status?: string }).status = 'not-a-status';
      await writeFile(bad, JSON.stringify(broken));
      const before = await count();
      await page.getByLabel('Bundle file (JSON)').setInputFiles(bad);
      await page.getByRole('button', { name: 'Import records' }).click();
      await page
        .locator('[role=alert][data-code=BAD_USER_INPUT]', { hasText: `entry[${i}]` })
        .waitFor();
      expect(await count()).toBe(before);

      const good = join(dir, 'good.json');
      await writeFile(good, JSON.stringify(bundle));
      await page.getByLabel('Bundle file (JSON)').setInputFiles(good);
      await page.getByRole('button', { name: 'Import records' }).click();
      const done = await page.getByTestId('import-done').textContent();
      const skipped = bundle.entry.filter((e) =>
        ['Organization', 'Practitioner'].includes(e.resource.resourceType),
      ).length;
      const kept = bundle.entry.length - skipped;
      expect(done).toBe(
        `Imported ${kept} new records; set aside ${skipped} that hold no one's health data (Organization, Practitioner).`,
      );
      expect(await count()).toBe(before + kept);

      // The same file again (an upload the patient was not sure went through): nothing twice.
      await page.getByLabel('Bundle file (JSON)').setInputFiles(good);
      await page.getByRole('button', { name: 'Import records' }).click();
      const again = page.getByTestId('import-done').filter({ hasText: 'unchanged' });
      expect(await again.textContent()).toBe(
        `Imported 0 new records; ${kept} brought in before were already here, unchanged; set aside ${skipped} that hold no one's health data (Organization, Practitioner).`,
      );
      expect(await count()).toBe(before + kept);
      recordsBeforeErasure = await count();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('turns emergency access off and on again, as the API then says', async () => {
    const allowed = async () =>
      (
        await api.ok<{ patient: { allowEmergencyAccess: boolean } }>(
          `query($p: ID!) { patient(id: $p) { allowEmergencyAccess } }`,
          { p: patientId },
          token,
        )
      ).patient.allowEmergencyAccess;
    await goTo(page, 'Settings and my data');
    const state = page.getByTestId('emergency-state');
    await expect(state.textContent()).resolves.toBe('Emergency access is on.');
    expect(await allowed()).toBe(true);

    // From the keyboard; the focus stays on the button, which now offers the opposite.
    await page.getByRole('button', { name: 'Turn emergency access off' }).focus();
    await page.keyboard.press('Enter');
    const turnOn = page.getByRole('button', { name: 'Turn emergency access on' });
    await turnOn.waitFor();
    await expect(turnOn.evaluate((e) => e.matches(':focus'))).resolves.toBe(true);
    await expect(state.textContent()).resolves.toBe('Emergency access is off.');
    expect(await allowed()).toBe(false);
    // And the setting holds: a clinician may no longer break the glass.
    const refused = await api.gql(
      `mutation($p: ID!) { declareEmergency(patientId: $p, reason: "Collapsed in the waiting room") { id } }`,
      { p: patientId },
      await api.token('dr-eve', 'CLINICIAN', 'org2'),
    );
    expect(refused.errors?.[0].extensions.code).toBe('FORBIDDEN');
    await checkPage(page, 'patient-emergency-off');

    await page.getByRole('button', { name: 'Turn emergency access on' }).click();
    await page.getByRole('button', { name: 'Turn emergency access off' }).waitFor();
    await expect(state.textContent()).resolves.toBe('Emergency access is on.');
    expect(await allowed()).toBe(true);
  });

  it('downloads all my data as one FHIR Bundle before erasure, as exportMyData gives it', async () => {
    const downloading = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download my data' }).click();
    const download = await downloading;
    expect(download.suggestedFilename()).toMatch(/^my-health-records-\d{4}-\d{2}-\d{2}\.json$/);
    const file = await download.path();
    const bundle = JSON.parse(await readFile(file!, 'utf8')) as {
      resourceType: string;
      type: string;
      entry: { resource: { id?: string } }[];
    };
    const { exportMyData } = await api.ok<{ exportMyData: typeof bundle }>(
      'query { exportMyData }',
      {},
      token,
    );
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    expect(bundle.entry.map((e) => e.resource.id).sort()).toEqual(
      exportMyData.entry.map((e) => e.resource.id).sort(),
    );
    await expect(page.getByTestId('export-done').textContent()).resolves.toBe(
      `Downloaded ${bundle.entry.length} entries.`,
    );
  });

  it('asks for a typed word before erasing, and cancelling erases nothing', async () => {
    await page.getByRole('button', { name: 'Erase my data…' }).click();
    const confirm = page.getByRole('button', { name: 'Erase all my data now' });
    const word = page.getByLabel('Type ERASE to confirm');
    // The keyboard is taken to the confirmation.
    await expect(word.evaluate((e) => e.matches(':focus'))).resolves.toBe(true);
    await expect(confirm.isDisabled()).resolves.toBe(true);
    await word.fill('erase please');
    await expect(confirm.isDisabled()).resolves.toBe(true);
    await checkPage(page, 'patient-erase-confirmation');

    await page.getByRole('button', { name: 'Cancel, keep my data' }).click();
    await expect(page.getByTestId('erase-confirmation').count()).resolves.toBe(0);
    await expect(
      page.getByRole('button', { name: 'Erase my data…' }).evaluate((e) => e.matches(':focus')),
    ).resolves.toBe(true);
    // The five it started with, and the bundle imported above: nothing erased.
    const { rows } = await api.db.query(
      'SELECT count(*)::int AS n FROM records WHERE patient_id = $1',
      [patientId],
    );
    expect(rows[0].n).toBe(recordsBeforeErasure);
  });

  it('erases everything once the word is typed, says so and signs out', async () => {
    // A grant still in force, which erasure must revoke.
    await api.ok(
      `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "dr-bob",
         purpose: TREATMENT, actions: [READ] }) { id } }`,
      {},
      token,
    );
    const activeGrants = `SELECT id FROM consent_grants WHERE patient_id = $1 AND status = 'ACTIVE'`;
    expect((await api.db.query(activeGrants, [patientId])).rows).toHaveLength(1);
    await page.getByRole('button', { name: 'Erase my data…' }).click();
    await page.getByLabel('Type ERASE to confirm').fill('ERASE');
    await page.getByRole('button', { name: 'Erase all my data now' }).click();
    const notice = page.getByTestId('signed-out-notice');
    await notice.waitFor();
    await expect(notice.textContent()).resolves.toContain('Your data was erased');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    await checkPage(page, 'patient-erased');

    // In storage: no record left, the profile marked erased, every grant revoked.
    const { rows } = await api.db.query<{ records: string; erased: boolean }>(
      `SELECT (SELECT count(*) FROM records WHERE patient_id = $1) AS records,
              (SELECT erased_at IS NOT NULL FROM patients WHERE id = $1) AS erased`,
      [patientId],
    );
    expect(rows[0]).toEqual({ records: '0', erased: true });
    expect((await api.db.query(activeGrants, [patientId])).rows).toEqual([]);
  });

  it('reports no CSP refusal or script error on any page', () => {
    expect(browser.problems).toEqual([]);
  });
});
