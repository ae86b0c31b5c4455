// The web console in a real browser (Debian's Chromium driven by playwright-core) against a
// real API: a patient grants Observations to a clinician, the clinician reads the chart and
// its HbA1c plot, the patient revokes and the clinician is refused, and the patient sees those
// reads in the access log, checked against the ledger. Every page is checked with axe-core.
import { BrowserContext, Page } from 'playwright-core';
import { ConsentService } from '../src/consent';
import { CONSOLE_CSP } from '../src/console';
import { seedCohort } from '../src/federated/synthetic/seed';
import {
  checkPage,
  ConsoleBrowser,
  sidewaysOverflow,
  signIn,
  storedInBrowser,
} from './helpers/console-browser';
import { LOINC } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

function hba1c(value: number, date: string) {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [
      {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/observation-category',
            code: 'laboratory',
          },
        ],
      },
    ],
    code: { coding: [{ system: LOINC, code: '4548-4', display: 'Hemoglobin A1c' }] },
    valueQuantity: { value, unit: '%' },
    effectiveDateTime: date,
  };
}

describe('the web console in a browser', () => {
  let api: TestApi;
  let browser: ConsoleBrowser;
  let patientContext: BrowserContext;
  let clinicianContext: BrowserContext;
  let patient: Page;
  let clinician: Page;
  let patientId: string;
  const open = (context: BrowserContext) => browser.open(context);

  beforeAll(async () => {
    api = await TestApi.start();
    browser = await ConsoleBrowser.launch(api.url);
    patientContext = await browser.context();
    clinicianContext = await browser.context();

    // The patient's records, written through the API as their devices would.
    const token = await api.token('alice', 'PATIENT');
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      `mutation { registerPatient(displayName: "Alice") { id } }`,
      {},
      token,
    );
    patientId = registerPatient.id;
    for (const [value, date] of [
      [7.9, '2025-01-15'],
      [7.2, '2025-05-20'],
      [6.6, '2025-10-02'],
    ] as const) {
      await api.ok(
        `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id } }`,
        { input: { resource: hba1c(value, `${date}T09:00:00Z`) } },
        token,
      );
    }
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('serves the console under a strict Content-Security-Policy, and /graphql and /health as before', async () => {
    const page = await fetch(`${api.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect((await fetch(`${api.url}/health`)).headers.get('content-security-policy')).toBeNull();
    const missing = await fetch(`${api.url}/console/assets/missing.js`);
    expect(missing.status).toBe(404);
    // The page is never kept (a stale one would ask for assets a newer build lacks), by any
    // of its names; a hashed asset is kept for good.
    for (const path of ['/console', '/console/', '/console/index.html']) {
      expect((await fetch(`${api.url}${path}`)).headers.get('cache-control')).toBe('no-store');
    }
    const asset = /src="\/console\/(assets\/[^"]+\.js)"/.exec(html)![1];
    expect((await fetch(`${api.url}/console/${asset}`)).headers.get('cache-control')).toBe(
      'public, max-age=31536000, immutable',
    );
    // With the development issuer the console offers its "sign in as" form.
    const config = await fetch(`${api.url}/console/config.json`);
    await expect(config.json()).resolves.toEqual({ mode: 'dev' });
    const gql = await api.gql(`{ __typename }`);
    expect(gql.status).toBe(200);
  });

  it('a patient signs in and sees their records with their integrity', async () => {
    patient = await open(patientContext);
    await checkPage(patient, 'sign-in');
    await signIn(patient, 'alice', 'PATIENT');
    await expect(patient.getByTestId('patient-id').textContent()).resolves.toBe(patientId);
    await patient.getByRole('table').getByText('Verified against the ledger').first().waitFor();
    expect(await patient.getByRole('table').getByText('Verified against the ledger').count()).toBe(
      3,
    );
    await checkPage(patient, 'patient-records');
  });

  it('a patient grants Observations to a clinician, in plain words', async () => {
    await patient.getByRole('button', { name: 'My consents' }).click();
    await patient.getByLabel('Kind').selectOption('CLINICIAN');
    await patient.getByLabel('Their id').fill('dr-bob');
    await patient.getByLabel('To treat me').check();
    await patient.getByLabel('Observation').check();
    await patient.getByRole('button', { name: 'Grant access' }).click();
    const grant = patient.locator('[data-testid=grant][data-grantee=dr-bob]');
    await expect(grant.getByTestId('grant-status').textContent()).resolves.toBe('ACTIVE');
    await expect(grant.textContent()).resolves.toContain('May read my records (Observation)');
    await checkPage(patient, 'patient-consents');
  });

  it('the clinician sees the patient among theirs, the chart and the HbA1c plot with units', async () => {
    clinician = await open(clinicianContext);
    await signIn(clinician, 'dr-bob', 'CLINICIAN', 'org1');
    await clinician.getByText(patientId).waitFor();
    await checkPage(clinician, 'clinician-patients');
    await expect(clinician.getByText('treatment: read Observation').count()).resolves.toBe(1);
    await clinician.getByRole('button', { name: 'Open chart for Alice' }).click();
    const chart = clinician.getByTestId('lab-chart');
    await chart.waitFor();
    await expect(chart.locator('figcaption').textContent()).resolves.toBe('HbA1c over time, in %');
    // The plot's numbers, oldest first, as the table beside the canvas gives them.
    const cells = await chart.locator('tbody td').allTextContents();
    expect(cells).toEqual(['7.9', '7.2', '6.6']);
    const box = await chart.locator('canvas').boundingBox();
    expect(box!.width).toBeGreaterThan(200);
    expect(box!.height).toBeGreaterThan(100);
    await checkPage(clinician, 'clinician-chart');
  });

  it('the patient revokes with one click, and the clinician is then refused', async () => {
    await patient.getByRole('button', { name: 'Revoke the grant to dr-bob' }).click();
    const grant = patient.locator('[data-testid=grant][data-grantee=dr-bob]');
    // The status badge itself: a text match on the whole grant ("revoked" is in the revoke
    // button's words too) would not wait for the revocation at all.
    await grant.locator('[data-testid=grant-status]', { hasText: /^REVOKED$/ }).waitFor();
    // It says when it was revoked, no longer "until revoked".
    await expect(grant.textContent()).resolves.toMatch(
      /revoked \d{1,2} \w{3} \d{4}, \d{2}:\d{2} \(UTC\)/,
    );
    await expect(grant.textContent()).resolves.not.toContain('until revoked');
    await clinician.getByRole('button', { name: 'Refresh' }).click();
    const refusal = clinician.locator('[role=alert][data-code=CONSENT_REQUIRED]', {
      hasText: 'has not granted you access',
    });
    await refusal.waitFor();
    expect(await clinician.getByTestId('lab-chart').count()).toBe(0);
    // The AI decisions beside the chart are read again with it, and refused too.
    await clinician
      .getByRole('region', { name: 'Assess risk' })
      .locator('[role=alert][data-code=CONSENT_REQUIRED]')
      .waitFor();
    await checkPage(clinician, 'clinician-refused');
  });

  it('the patient sees the clinicians’ reads in the access log, an emergency highlighted, checked against the ledger', async () => {
    // Another clinician breaks the glass, with a reason, and reads.
    const eve = await api.token('dr-eve', 'CLINICIAN', 'org2');
    await api.ok(
      `mutation($p: ID!) { declareEmergency(patientId: $p, reason: "Unconscious in A&E") { id } }`,
      { p: patientId },
      eve,
    );
    await api.ok(
      `query($p: ID!) { records(patientId: $p) { items { id } } }`,
      { p: patientId },
      eve,
    );
    await patient.getByRole('button', { name: 'Who read my records' }).click();
    // The declaration and the read it allowed, both highlighted with their reason.
    const emergency = patient.locator('[data-testid=access-event][data-actor=dr-eve]');
    await emergency.first().waitFor();
    const rows = await emergency.evaluateAll((trs) =>
      trs.map((tr) => ({ highlighted: tr.className, text: tr.textContent })),
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.highlighted).toBe('breakglass');
      expect(row.text).toContain('Emergency access: Unconscious in A&E');
    }
    const reads = patient.locator('[data-testid=access-event][data-actor=dr-bob]');
    await reads.first().waitFor();
    const decisions = await reads.evaluateAll((rows) =>
      rows.map((r) => r.getAttribute('data-decision')),
    );
    // Newest first: the refused reads after the revocation (the chart's records and its AI
    // decisions), then the chart's two permitted reads before it (its records and its latest
    // vital signs).
    expect(decisions).toEqual(['DENY', 'DENY', 'PERMIT', 'PERMIT']);
    await patient.getByRole('button', { name: 'Check against the ledger' }).click();
    await expect(
      patient
        .getByTestId('verification')
        .getByText(/Checked against the ledger: all \d+ accesses justified/)
        .textContent(),
    ).resolves.toBeTruthy();
    await checkPage(patient, 'patient-access-log');
  });

  it('a refused clinician may break the glass with a reason, and sees the time left', async () => {
    await clinician.getByLabel('Reason').fill('Collapsed in clinic');
    await clinician.getByRole('button', { name: 'Declare an emergency' }).click();
    await clinician.getByTestId('lab-chart').waitFor();
    await expect(clinician.getByTestId('emergency').textContent()).resolves.toMatch(
      /^Emergency access: (59|60) min \d\d s left$/,
    );
    // The chart's refusal and its AI decisions' both go once the emergency lets them be read.
    // (A string, run in the page: the suite's own types know no DOM.)
    await clinician.waitForFunction(
      `document.querySelectorAll('[data-code=CONSENT_REQUIRED]').length === 0`,
    );
    await checkPage(clinician, 'clinician-break-glass');
    // The patient turns emergency access off: the emergency ends, and the page no longer
    // counts down one the server refuses; on again, it stays ended (a new one is needed).
    const chartRefusal = clinician.locator('[role=alert][data-code=CONSENT_REQUIRED]', {
      hasText: 'has not granted you access',
    });
    const alice = await api.token('alice', 'PATIENT');
    const setAccess = 'mutation($a: Boolean!) { setEmergencyAccess(allow: $a) { id } }';
    await api.ok(setAccess, { a: false }, alice);
    await clinician.getByRole('button', { name: 'Refresh' }).click();
    await chartRefusal.waitFor();
    expect(await clinician.getByTestId('emergency').count()).toBe(0);
    await api.ok(setAccess, { a: true }, alice);
    await clinician.getByRole('button', { name: 'Refresh' }).click();
    await chartRefusal.waitFor();
    expect(await clinician.getByTestId('emergency').count()).toBe(0);
  });

  it('keeps the token and PHI out of the URL and the browser’s storage', async () => {
    for (const page of [patient, clinician]) {
      expect(new URL(page.url()).pathname).toBe('/console/');
      expect(new URL(page.url()).search).toBe('');
      expect(await storedInBrowser(page)).toEqual({ local: 0, session: 0, cookie: '' });
    }
  });

  it('works at phone width without sideways scrolling', async () => {
    await patient.setViewportSize({ width: 375, height: 740 });
    await patient.getByRole('button', { name: 'My consents' }).click();
    await patient.getByRole('button', { name: 'Grant access' }).waitFor();
    expect(await sidewaysOverflow(patient)).toEqual({ overflow: 0, wide: [] });
    await checkPage(patient, 'phone-consents');
  });

  it('shows an error in plain words for a refused sign-in', async () => {
    const page = await open(patientContext);
    await page.getByLabel('Subject (user id)').fill('x'.repeat(300));
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.locator('[role=alert][data-code=BAD_USER_INPUT]');
    await alert.waitFor();
    await expect(alert.textContent()).resolves.toContain('Some input was not accepted');
    await page.close();
  });

  it('a researcher starts a run on a seeded cohort and sees the curves reach its last round', async () => {
    // A cohort at two sites, every patient in the study: the in-process nodes train it. Each node
    // scores its model on a held-out fifth of its patients; 200 patients keep both classes in
    // those fifths, so every round has an AUC to show.
    const summary = await seedCohort(api.server.app, { patients: 200, sites: 2, seed: 5 });
    const researcherToken = await api.token('rosa', 'RESEARCHER');
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation { createStudy(input: { title: "Type 2 diabetes", features: ["2345-7", "4548-4"],
         label: "44054006", minNodes: 2 }) { id } }`,
      {},
      researcherToken,
    );
    const consents = api.server.app.get(ConsentService);
    for (const p of summary.patients) {
      await consents.grant(
        { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
        {
          granteeType: 'STUDY',
          granteeId: createStudy.id,
          purpose: 'RESEARCH',
          actions: ['TRAIN'],
        },
      );
    }
    const researcher = await open(clinicianContext);
    await signIn(researcher, 'rosa', 'RESEARCHER');
    await researcher.getByLabel('Rounds').fill('2');
    await researcher.getByRole('button', { name: 'Start a run' }).click();
    // The page polls while the run goes; the last round's point appears without a reload.
    await researcher.getByTestId('run-status').getByText('completed: round 2 of 2').waitFor();
    await researcher.getByRole('button', { name: /: completed, round 2 of 2$/ }).waitFor();
    const chart = researcher.getByTestId('run-chart');
    expect(await chart.locator('tbody tr').count()).toBe(2);
    // Each round's AUC and loss, as numbers (a missing value would show as —). An AUC is a
    // probability: 0 is a (poor) measurement, not a missing one.
    const rows = await chart
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      );
    for (const [auc, loss] of rows) {
      expect(Number(auc)).toBeGreaterThanOrEqual(0);
      expect(Number(auc)).toBeLessThanOrEqual(1);
      expect(Number(loss)).toBeGreaterThan(0);
    }
    await checkPage(researcher, 'researcher-run');
  });

  it('reports no CSP refusal or script error on any page', () => {
    expect(browser.problems).toEqual([]);
  });
});
