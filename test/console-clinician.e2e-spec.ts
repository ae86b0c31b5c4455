// The clinician's chart and list, and the patient's access log, past the API's first page, in a
// real browser (Debian's Chromium, playwright-core) against a real API: a patient with more
// records than one page holds, a clinician with more patients than one page holds, and an
// emergency read buried under a page of newer reads. Also: each record dated by its clinical
// date, emergency state that ends with the session, and grants described by what they allow.
import { BrowserContext, Page } from 'playwright-core';
import {
  checkPage,
  ConsoleBrowser,
  goTo,
  signIn,
  storedInBrowser,
} from './helpers/console-browser';
import { condition, observation } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

const SNOMED = 'http://snomed.info/sct';
/** More than one page of the API (100 items) holds. */
const MANY = 110;

interface ApiRecord {
  id: string;
  resourceType: string;
  effectiveAt: string;
}

const at = (date: string) => `${date}T09:00:00Z`;

function hba1c(value: number, date: string) {
  return { ...observation('4548-4', value, '%'), effectiveDateTime: at(date) };
}

/** Records whose clinical date is in an element other than effectiveDateTime or onset. */
const IMMUNIZATION = {
  resourceType: 'Immunization',
  status: 'completed',
  vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
  occurrenceDateTime: at('2020-10-01'),
};
const PROCEDURE = {
  resourceType: 'Procedure',
  status: 'completed',
  code: { coding: [{ system: SNOMED, code: '80146002', display: 'Appendectomy' }] },
  performedPeriod: { start: at('2018-06-01'), end: '2018-06-01T11:00:00Z' },
};
const ALLERGY = {
  resourceType: 'AllergyIntolerance',
  clinicalStatus: {
    coding: [
      {
        system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
        code: 'active',
      },
    ],
  },
  code: { coding: [{ system: SNOMED, code: '91936005' }], text: 'Penicillin allergy' },
  recordedDate: at('2017-04-02'),
};

describe('the clinician’s chart and the access log beyond one page', () => {
  let api: TestApi;
  let browser: ConsoleBrowser;
  let context: BrowserContext;
  let page: Page;
  let cara: string;
  let caraId: string;

  /** Every record of Cara's, as the API answers her. */
  function allRecords(): Promise<ApiRecord[]> {
    return api.everyItem<ApiRecord>(
      `query($p: ID!, $after: String) { records(patientId: $p, first: 100, after: $after) {
         items { id resourceType effectiveAt } nextCursor } }`,
      { p: caraId },
      cara,
      'records',
    );
  }

  async function openChartById(patientId: string) {
    await goTo(page, 'Patient chart');
    await page.getByLabel('Patient id').fill(patientId);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
  }

  async function signOut() {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  }

  beforeAll(async () => {
    api = await TestApi.start();
    browser = await ConsoleBrowser.launch(api.url);
    context = await browser.context();

    cara = await api.token('cara', 'PATIENT');
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      `mutation { registerPatient(displayName: "Cara") { id } }`,
      {},
      cara,
    );
    caraId = registerPatient.id;
    // Her older records first: the API lists the newest first, so these fall past page one.
    for (const resource of [
      { ...condition('44054006'), onsetDateTime: at('2019-03-01') },
      ALLERGY,
      IMMUNIZATION,
      PROCEDURE,
      hba1c(7.9, '2024-01-15'),
      hba1c(7.2, '2024-06-20'),
      hba1c(6.6, '2024-12-02'),
    ]) {
      await api.createRecord(cara, resource);
    }
    // Then a device's glucose readings, more than a page of them, in one bundle.
    const readings = Array.from({ length: MANY }, (_, i) => ({
      resource: {
        ...observation('2345-7', 5 + (i % 10) / 10),
        effectiveDateTime: new Date(Date.UTC(2025, 0, 1 + i, 8)).toISOString(),
      },
    }));
    await api.ok(
      `mutation($b: JSON!) { importBundle(bundle: $b) { created } }`,
      { b: { resourceType: 'Bundle', type: 'collection', entry: readings } },
      cara,
    );
    await api.grantRead(cara, 'dr-ana');

    page = await browser.open(context);
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('charts every record the clinician may read, past the first page, each by its clinical date', async () => {
    const records = await allRecords();
    expect(records).toHaveLength(7 + MANY);

    await signIn(page, 'dr-ana', 'CLINICIAN', 'org1');
    await page.getByRole('button', { name: 'Open chart for Cara' }).click();
    const sections = page.locator('section.panel[aria-label]');
    await page.getByRole('region', { name: 'Condition' }).waitFor();
    const types = [...new Set(records.map((r) => r.resourceType))].sort();
    expect(types).toEqual([
      'AllergyIntolerance',
      'Condition',
      'Immunization',
      'Observation',
      'Procedure',
    ]);
    expect(await sections.evaluateAll((ss) => ss.map((s) => s.getAttribute('aria-label')))).toEqual(
      types,
    );
    for (const type of types) {
      // Newest first by the server's clinical date, which the row's <time> carries.
      const expected = records
        .filter((r) => r.resourceType === type)
        .sort((a, b) => b.effectiveAt.localeCompare(a.effectiveAt) || a.id.localeCompare(b.id))
        .map((r) => ({ id: r.id, at: r.effectiveAt }));
      const section = page.getByRole('region', { name: type });
      await expect(section.locator('h3').textContent()).resolves.toBe(
        `${type} (${expected.length})`,
      );
      const shown = await section.locator('tbody tr').evaluateAll((trs) =>
        trs.map((tr) => ({
          id: tr.getAttribute('data-record'),
          at: tr.querySelector('time')?.getAttribute('datetime'),
        })),
      );
      expect(shown).toEqual(expected);
    }
    // Dates the old reading missed: an occurrence, a performed period's start.
    const immunization = records.find((r) => r.resourceType === 'Immunization')!;
    expect(immunization.effectiveAt).toBe('2020-10-01T09:00:00.000Z');
    const procedure = records.find((r) => r.resourceType === 'Procedure')!;
    expect(procedure.effectiveAt).toBe('2018-06-01T09:00:00.000Z');
    await expect(
      page.getByRole('region', { name: 'Immunization' }).locator('tbody td').nth(1).textContent(),
    ).resolves.toBe('1 Oct 2020, 09:00');

    // The HbA1c plot has the values on the second page too, oldest first.
    const chart = page.getByTestId('lab-chart');
    await page.getByLabel('Lab value').selectOption('4548-4');
    await expect(chart.locator('figcaption').textContent()).resolves.toBe('HbA1c over time, in %');
    await expect(chart.locator('tbody td').allTextContents()).resolves.toEqual([
      '7.9',
      '7.2',
      '6.6',
    ]);
    await checkPage(page, 'clinician-chart-all-pages');
  });

  it('reloads the AI decisions with the chart after breaking the glass, and forgets the emergency at sign-out', async () => {
    await signOut();
    await signIn(page, 'dr-eve', 'CLINICIAN', 'org2');
    await openChartById(caraId);
    await page.locator('#bg-h').waitFor();
    // No consent: the chart and the decisions beside it are both refused.
    const decisionsRefused = page
      .getByRole('region', { name: 'Assess risk' })
      .locator('[role=alert][data-code=CONSENT_REQUIRED]');
    await decisionsRefused.waitFor();

    await page.getByLabel('Reason').fill('Found unconscious');
    await page.getByRole('button', { name: 'Declare an emergency' }).click();
    await page.getByRole('region', { name: 'Condition' }).waitFor();
    await expect(page.getByTestId('emergency').textContent()).resolves.toMatch(
      /^Emergency access: (59|60) min \d\d s left$/,
    );
    await page
      .getByRole('region', { name: 'Assess risk' })
      .getByText('No AI decision about this patient that you may see.')
      .waitFor();
    expect(await page.locator('[data-code=CONSENT_REQUIRED]').count()).toBe(0);

    // Another clinician on the same tab, with a grant of their own: no emergency of theirs.
    await signOut();
    await signIn(page, 'dr-ana', 'CLINICIAN', 'org1');
    await openChartById(caraId);
    await page.getByRole('region', { name: 'Condition' }).waitFor();
    await page.getByTestId('vitals').waitFor();
    expect(await page.getByTestId('emergency').count()).toBe(0);
  });

  it('lets the patient page back to an emergency read under more than a page of newer reads', async () => {
    const ana = await api.token('dr-ana', 'CLINICIAN', 'org1');
    for (let i = 0; i < MANY; i++) {
      await api.ok(
        `query($p: ID!) { records(patientId: $p, first: 1) { items { id } } }`,
        { p: caraId },
        ana,
      );
    }
    await signOut();
    await signIn(page, 'cara', 'PATIENT');
    await goTo(page, 'Who read my records');
    const events = page.getByTestId('access-event');
    await events.first().waitFor();
    expect(await events.count()).toBe(100);
    const emergency = page.locator('[data-testid=access-event][data-actor=dr-eve]');
    expect(await emergency.count()).toBe(0);

    const older = page.getByRole('button', { name: 'Show older' });
    while ((await emergency.count()) === 0) {
      const n = await events.count();
      await older.click();
      await events.nth(n).waitFor();
    }
    // Page by page to the end: every event of the log, once each, newest first. (A string, run
    // in the page: the suite's own types know no DOM.)
    while ((await older.count()) > 0) {
      const n = await events.count();
      await older.click();
      await page.waitForFunction(
        `document.querySelectorAll('[data-testid=access-event]').length > ${n} ||
         !document.querySelector('[data-testid=older-events]')`,
      );
    }
    // Her refused reads before the emergency, then the reads it allowed, highlighted with its
    // reason.
    const rows = await emergency.evaluateAll((trs) =>
      trs.map((tr) => ({
        decision: tr.getAttribute('data-decision'),
        highlighted: tr.className,
        emergency: tr.textContent?.includes('Emergency access: Found unconscious'),
      })),
    );
    const allowed = rows.filter((r) => r.decision === 'PERMIT');
    expect(allowed.length).toBeGreaterThanOrEqual(2);
    expect(allowed).toEqual(
      allowed.map(() => ({ decision: 'PERMIT', highlighted: 'breakglass', emergency: true })),
    );
    const refused = rows.filter((r) => r.decision === 'DENY');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused).toEqual(
      refused.map(() => ({ decision: 'DENY', highlighted: '', emergency: false })),
    );
    const shownIds = await events.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
    const apiIds = (
      await api.everyItem<{ id: string }>(
        `query($p: ID!, $after: String) { accessLog(patientId: $p, first: 100, after: $after) {
           items { id } nextCursor } }`,
        { p: caraId },
        cara,
        'accessLog',
      )
    ).map((e) => e.id);
    // The API's log may have grown by the page's own reads since; the page shows what it read.
    expect(shownIds).toEqual(apiIds.slice(apiIds.length - shownIds.length));
    expect(new Set(shownIds).size).toBe(shownIds.length);
    await checkPage(page, 'patient-access-log-older');
  });

  it('words the ledger check for one unanchored event in the singular', async () => {
    await page.route('**/graphql', async (route) => {
      if (!route.request().postData()?.includes('verifyAccessLog')) return route.fallback();
      await route.fulfill({
        contentType: 'application/json',
        body: JSON.stringify({
          data: {
            verifyAccessLog: {
              ok: true,
              eventsChecked: 12,
              permitsJustified: 11,
              unanchoredEvents: 1,
              problems: [],
            },
          },
        }),
      });
    });
    await page.getByRole('button', { name: 'Check against the ledger' }).click();
    await page.getByTestId('verification').locator('p').waitFor();
    await expect(page.getByTestId('verification').textContent()).resolves.toBe(
      'Checked against the ledger: all 11 accesses justified (12 events in an intact chain; 1 recent one not yet anchored).',
    );
    await page.unroute('**/graphql');
  });

  it('shows a grant that starts later as not yet in effect, not active', async () => {
    const tomorrow = new Date(Date.now() + 24 * 3600_000).toISOString();
    await api.grantRead(cara, 'dr-later', { validFrom: tomorrow });
    await goTo(page, 'My consents');
    const grant = page.locator('[data-testid=grant][data-grantee=dr-later]');
    await expect(grant.getByTestId('grant-status').textContent()).resolves.toBe(
      'NOT YET IN EFFECT',
    );
    const now = page.locator('[data-testid=grant][data-grantee=dr-ana]');
    await expect(now.getByTestId('grant-status').textContent()).resolves.toBe('ACTIVE');
    await checkPage(page, 'patient-consents-not-yet');
  });

  it('lists every patient of the clinician, past the first page, each grant by what it allows', async () => {
    // Cara's grants that are not plain reads of everything.
    await api.ok(
      `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "dr-ana",
         purpose: TREATMENT, actions: [WRITE] }) { id } }`,
      {},
      cara,
    );
    await api.ok(
      `mutation { grantConsent(input: { granteeType: CLINICIAN, granteeId: "dr-ana",
         purpose: TREATMENT, actions: [READ], resourceTypes: ["Observation"],
         categories: ["laboratory"], includeRestricted: true }) { id } }`,
      {},
      cara,
    );
    // A hundred newer patients, each granting dr-ana: Cara, the oldest, is past the first page.
    for (let start = 0; start < 100; start += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const token = await api.token(`patient-${start + i}`, 'PATIENT');
          await api.ok(
            `mutation($n: String) { registerPatient(displayName: $n) { id } }`,
            { n: `Patient ${start + i}` },
            token,
          );
          await api.grantRead(token, 'dr-ana');
        }),
      );
    }
    await signOut();
    await signIn(page, 'dr-ana', 'CLINICIAN', 'org1');
    const cards = page.getByTestId('my-patient');
    await page.getByRole('button', { name: 'Open chart for Cara' }).waitFor();
    expect(await cards.count()).toBe(101);
    const card = page.locator(`[data-testid=my-patient][data-patient="${caraId}"]`);
    const grants = await card.getByTestId('patient-grant').allTextContents();
    expect(grants.sort()).toEqual(
      [
        'treatment: read all record types',
        'treatment: write all record types',
        'treatment: read Observation in laboratory, restricted included',
      ].sort(),
    );
    await checkPage(page, 'clinician-patients-all-pages');
  });

  it('keeps the token and PHI out of the URL and the browser’s storage, and reports no CSP refusal or script error', async () => {
    expect(new URL(page.url()).pathname).toBe('/console/');
    expect(new URL(page.url()).search).toBe('');
    expect(await storedInBrowser(page)).toEqual({ local: 0, session: 0, cookie: '' });
    expect(browser.problems).toEqual([]);
  });
});
