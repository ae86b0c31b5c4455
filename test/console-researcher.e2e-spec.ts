// The console's chart and research pages in a real browser (Debian's Chromium driven by
// playwright-core) against a real API: a clinician's latest vital signs with their units, a
// researcher creating a study through the form (refused input explained in plain words), a run
// with each round's ledger transaction, and the final model saved as TensorFlow.js model.json,
// fetched with the token in a header, never in a URL. Then a run whose nodes are simulated: each
// measure on its own scale, what ε means, each round's updates and why one was rejected, and
// "Start a run" and "Deploy" offered only to whom the server allows. Every page is checked with
// axe-core.
import { readFile } from 'node:fs/promises';
import { Browser, BrowserContext, Page } from 'playwright-core';
import { ConsentService } from '../src/consent';
import { seedCohort } from '../src/federated/synthetic/seed';
import { ensureConsoleBuilt } from './helpers/console-build';
import {
  checkPage,
  ConsoleBrowser,
  launchChromium,
  openConsole,
  signIn,
  storedInBrowser,
} from './helpers/console-browser';
import { LOINC } from './helpers/fhir';
import {
  manifestOf,
  postUpdate,
  registerSimulatedNode,
  signManifest,
  SimulatedNode,
  submitUpdate,
  weights,
} from './helpers/simulated-node';
import { TestApi } from './helpers/test-api';

const category = (code: string) => ({
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code }],
});
const VITAL_SIGNS = category('vital-signs');

function vital(code: string, value: number, unit: string, date: string, kind = VITAL_SIGNS) {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [kind],
    code: { coding: [{ system: LOINC, code }] },
    valueQuantity: { value, unit },
    effectiveDateTime: date,
  };
}

/** A blood-pressure panel: systolic and diastolic as its components. */
function bloodPressure(systolic: number, diastolic: number, date: string) {
  const component = (code: string, value: number) => ({
    code: { coding: [{ system: LOINC, code }] },
    valueQuantity: { value, unit: 'mmHg' },
  });
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [VITAL_SIGNS],
    code: { coding: [{ system: LOINC, code: '85354-9' }] },
    component: [component('8480-6', systolic), component('8462-4', diastolic)],
    effectiveDateTime: date,
  };
}

describe('the console’s vital signs and research pages in a browser', () => {
  let api: TestApi;
  let browser: Browser;
  let context: BrowserContext;
  /** Problems the browser reported on any page: CSP refusals, script errors. */
  const browserProblems: string[] = [];
  /** Every URL the pages asked for, to show that no token travels in one. */
  const requested: string[] = [];

  async function open(): Promise<Page> {
    const page = await openConsole(context, api.url, browserProblems);
    page.on('request', (r) => requested.push(r.url()));
    return page;
  }

  beforeAll(async () => {
    ensureConsoleBuilt();
    api = await TestApi.start();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('shows a clinician the latest vital signs with value, unit and date, and which have none', async () => {
    const token = await api.token('vera', 'PATIENT');
    await api.ok(`mutation { registerPatient(displayName: "Vera") { id } }`, {}, token);
    const resources = [
      vital('8867-4', 88, '/min', '2025-03-01T08:00:00Z'),
      vital('8867-4', 72, '/min', '2025-06-01T08:00:00Z'), // the newer heart rate
      bloodPressure(128, 82, '2025-06-01T08:05:00Z'),
      vital('8310-5', 37.2, 'Cel', '2025-06-01T08:10:00Z'),
      vital('2708-6', 97, '%', '2025-06-01T08:15:00Z'),
      vital('29463-7', 70.5, 'kg', '2025-05-20T10:00:00Z'),
      // Lab values beside them: the chart's plot, not vital signs.
      vital('4548-4', 7.4, '%', '2025-01-10T09:00:00Z', category('laboratory')),
      vital('4548-4', 6.9, '%', '2025-06-01T09:00:00Z', category('laboratory')),
    ];
    for (const resource of resources) {
      await api.ok(
        `mutation($input: CreateRecordInput!) { createRecord(input: $input) { id } }`,
        { input: { resource } },
        token,
      );
    }
    await api.grantRead(token, 'dr-vic');

    const page = await open();
    await signIn(page, 'dr-vic', 'CLINICIAN');
    await page.getByRole('button', { name: 'Open chart for Vera' }).click();
    const vitals = page.getByTestId('vitals');
    await vitals.locator('tbody tr').first().waitFor();
    const rows = await vitals
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.textContent)),
      );
    expect(rows).toEqual([
      ['Heart rate', '72 /min', '1 Jun 2025, 08:00'],
      ['Blood pressure', '128/82 mmHg', '1 Jun 2025, 08:05'],
      ['Body temperature', '37.2 °C', '1 Jun 2025, 08:10'],
      ['Respiratory rate', 'No value recorded'],
      ['Oxygen saturation (SpO₂)', '97 %', '1 Jun 2025, 08:15'],
      ['Body weight', '70.5 kg', '20 May 2025, 10:00'],
      ['Body mass index (BMI)', 'No value recorded'],
    ]);
    await page.getByTestId('lab-chart').waitFor();
    await checkPage(page, 'clinician-vitals');
    await page.close();
  });

  let researcher: Page;

  it('explains refused study settings in plain words, field by field and from the server', async () => {
    researcher = await open();
    await signIn(researcher, 'rosa', 'RESEARCHER');
    const form = researcher.getByRole('form', { name: 'Create a study' });
    await form.getByLabel('Title').fill('Type 2 diabetes from labs');
    await form.getByLabel('Features (LOINC codes)').fill('glucose, 4548-4');
    await form.getByLabel('Label (SNOMED CT condition)').fill('diabetes');
    await form.getByLabel('Minimum hospitals per round').fill('0');
    await form.getByRole('button', { name: 'Create the study' }).click();
    await expect(researcher.getByTestId('study-form-errors').textContent()).resolves.toBe(
      '3 fields need correcting before the study can be created.',
    );
    const fieldErrors = await form
      .locator('[data-field]')
      .evaluateAll((els) => els.map((e) => [e.getAttribute('data-field'), e.textContent]));
    expect(fieldErrors).toEqual([
      [
        'features',
        '“glucose” is not a LOINC code: a LOINC code is digits, a dash and a check digit, such as 2345-7.',
      ],
      ['label', 'The label must be a SNOMED CT concept id: 6 to 18 digits, such as 44054006.'],
      ['minNodes', 'The minimum number of hospitals must be a whole number from 1 to 100.'],
    ]);
    // Each error is announced with its field.
    await expect(
      form.getByLabel('Features (LOINC codes)').getAttribute('aria-invalid'),
    ).resolves.toBe('true');
    await checkPage(researcher, 'researcher-study-errors');
    // Nothing was sent: the server knows no study.
    const none = await api.ok<{ studies: unknown[] }>(
      `{ studies { id } }`,
      {},
      await api.token('rosa', 'RESEARCHER'),
    );
    expect(none.studies).toEqual([]);

    // Well-formed, but a code the nodes cannot scale: the server's refusal, in its words.
    await form.getByLabel('Features (LOINC codes)').fill('2345-7, 1234-5');
    await form.getByLabel('Label (SNOMED CT condition)').fill('44054006');
    await form.getByLabel('Minimum hospitals per round').fill('2');
    await form.getByRole('button', { name: 'Create the study' }).click();
    const refusal = form.locator('[role=alert][data-code=BAD_USER_INPUT]');
    await refusal.waitFor();
    await expect(refusal.textContent()).resolves.toContain('feature 1234-5 has no reference scale');
    expect(await researcher.getByTestId('study-form-errors').count()).toBe(0);
  });

  it('creates a study through the form, runs it, and shows each round’s ledger transaction', async () => {
    const form = researcher.getByRole('form', { name: 'Create a study' });
    await form.getByLabel('Features (LOINC codes)').fill('2345-7 4548-4');
    await form.getByRole('button', { name: 'Create the study' }).click();
    await form
      .getByRole('status')
      .getByText('Study “Type 2 diabetes from labs” created.')
      .waitFor();
    const rosa = await api.token('rosa', 'RESEARCHER');
    const { studies } = await api.ok<{
      studies: { id: string; title: string; features: string[]; label: string }[];
    }>(`{ studies { id title features label } }`, {}, rosa);
    expect(studies).toEqual([
      {
        id: expect.any(String),
        title: 'Type 2 diabetes from labs',
        features: ['2345-7', '4548-4'],
        label: '44054006',
      },
    ]);
    await researcher.getByRole('heading', { name: 'Type 2 diabetes from labs' }).waitFor();

    // A cohort at two sites, every patient in the study: the in-process nodes train it.
    const summary = await seedCohort(api.server.app, { patients: 80, sites: 2, seed: 7 });
    const consents = api.server.app.get(ConsentService);
    for (const p of summary.patients) {
      await consents.grant(
        { id: p.userId, roles: ['PATIENT'], organizationId: p.organizationId },
        { granteeType: 'STUDY', granteeId: studies[0].id, purpose: 'RESEARCH', actions: ['TRAIN'] },
      );
    }
    await researcher.getByLabel('Rounds').fill('2');
    await researcher.getByRole('button', { name: 'Start a run' }).click();
    await researcher.getByTestId('run-status').getByText('completed: round 2 of 2').waitFor();

    const { study } = await api.ok<{ study: { runs: { provenanceTxIds: string[] }[] } }>(
      `query($id: ID!) { study(id: $id) { runs { provenanceTxIds } } }`,
      { id: studies[0].id },
      rosa,
    );
    const txIds = study.runs[0].provenanceTxIds;
    expect(txIds).toHaveLength(2);
    const shown = await researcher
      .getByTestId('round-txs')
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      );
    expect(shown).toEqual([
      ['1', txIds[0]],
      ['2', txIds[1]],
    ]);
    await checkPage(researcher, 'researcher-run-ledger');
  });

  it('saves the completed run’s final model as a TensorFlow.js model.json, with no token in any URL', async () => {
    const [saved] = await Promise.all([
      researcher.waitForEvent('download'),
      researcher
        .getByRole('button', { name: 'Download the final model (TensorFlow.js model.json)' })
        .click(),
    ]);
    expect(saved.suggestedFilename()).toMatch(/^model-[0-9a-f-]+\.json$/);
    const model = JSON.parse(await readFile(await saved.path(), 'utf8')) as {
      format: string;
      weightsManifest: { weights: { name: string; shape: number[]; dtype: string }[] }[];
      weightData: string;
      userDefinedMetadata: { features: { code: string }[]; label: string };
    };
    expect(model.format).toBe('layers-model');
    expect(model.userDefinedMetadata.features.map((f) => f.code)).toEqual(['2345-7', '4548-4']);
    expect(model.userDefinedMetadata.label).toBe('44054006');
    // Logistic regression on two features: a 2×1 kernel and a bias, float32, embedded.
    const weights = model.weightsManifest.flatMap((m) => m.weights);
    expect(weights.map((w) => w.shape)).toEqual([[2, 1], [1]]);
    const bytes = Buffer.from(model.weightData, 'base64');
    expect(bytes.length).toBe(3 * 4);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, 3);
    expect([...values].every(Number.isFinite)).toBe(true);
    expect([...values].some((v) => v !== 0)).toBe(true);

    // The download asked the API with the token in its header only.
    const modelRequests = requested.filter((u) => u.includes('/model'));
    expect(modelRequests).toHaveLength(1);
    expect(new URL(modelRequests[0]).search).toBe('');
    for (const url of requested) expect(url).not.toMatch(/eyJ|access_token|bearer/i);
    expect(new URL(researcher.url()).search).toBe('');
    expect(await storedInBrowser(researcher)).toEqual({ local: 0, session: 0, cookie: '' });
    await checkPage(researcher, 'researcher-model');
  });

  it('fits the research page at phone width without sideways scrolling', async () => {
    await researcher.setViewportSize({ width: 375, height: 740 });
    await researcher.getByTestId('round-txs').waitFor();
    // The plot redraws at the new width on the next frames; then nothing is wider than the page.
    await framesUntil(
      researcher,
      `document.documentElement.scrollWidth === document.documentElement.clientWidth`,
    );
    // What is shown (a closed <details> shows its summary only) fits the width.
    const wide = await researcher.evaluate(
      `[...document.querySelectorAll('body *')].filter((e) => !e.closest('.visually-hidden') && !(e.closest('details:not([open])') && !e.closest('summary')) && e.getBoundingClientRect().right > document.documentElement.clientWidth).map((e) => e.tagName + '.' + e.className)`,
    );
    expect(wide).toEqual([]);
    await checkPage(researcher, 'phone-researcher-run');
  });

  it('reports no CSP refusal or script error on any page', () => {
    expect(browserProblems).toEqual([]);
  });
});

describe('a run’s measures, updates and privacy, and who may start or deploy it', () => {
  // The nodes are simulated by signed updates (no training), so each round's measures are
  // known: AUC falls from 0.88 to 0.02 while ε, with noise multiplier 0.5, climbs past 10.
  let api: TestApi;
  let browser: ConsoleBrowser;
  let context: BrowserContext;
  let nodeA: SimulatedNode;
  let nodeB: SimulatedNode;
  let runId: string;
  let bobId: string;
  let rosaPage: Page;

  interface ApiRun {
    metrics: {
      round: number;
      auc: number;
      loss: number;
      epsilon: number;
      numContributors: number;
      numUpdates: number;
    }[];
    updates: { round: number; nodeId: string; status: string; reason: string | null }[];
  }
  async function apiRun(): Promise<ApiRun> {
    const { trainingRun } = await api.ok<{ trainingRun: ApiRun }>(
      `query($r: ID!) { trainingRun(id: $r) {
         metrics { round auc loss epsilon numContributors numUpdates }
         updates { round nodeId status reason } } }`,
      { r: runId },
      await api.token('rosa', 'RESEARCHER'),
    );
    return trainingRun;
  }

  async function patient(name: string): Promise<{ token: string; id: string }> {
    const token = await api.token(name, 'PATIENT');
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      'mutation($n: String) { registerPatient(displayName: $n) { id } }',
      { n: name },
      token,
    );
    return { token, id: registerPatient.id };
  }

  /** The rows of a table's body, cell by cell. */
  const cells = (page: Page, testId: string) =>
    page
      .getByTestId(testId)
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      );

  /** Opens the completed run from the studies page. */
  async function openRun(page: Page): Promise<void> {
    await page.getByRole('button', { name: /^Run .*: completed, round 2 of 2$/ }).click();
    await page.getByTestId('run-status').getByText('completed: round 2 of 2').waitFor();
  }

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'off' });
    browser = await ConsoleBrowser.launch(api.url);
    context = await browser.context();
    const admin = await api.token('root', 'ADMIN');
    nodeA = await registerSimulatedNode(api, admin, { name: 'node-a' });
    nodeB = await registerSimulatedNode(api, admin, { name: 'node-b' });
    const rosa = await api.token('rosa', 'RESEARCHER');
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation { createStudy(input: { title: "Diabetes risk", features: ["2345-7", "30525-0"],
         label: "44054006", minNodes: 1, clipNorm: 1, noiseMultiplier: 0.5 }) { id } }`,
      {},
      rosa,
    );
    const ada = await patient('ada');
    await api.ok(
      `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
         purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
      { s: createStudy.id },
      ada.token,
    );
    // Bob never consented to the study: an update listing him is rejected.
    bobId = (await patient('bob')).id;
    const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
      'mutation($s: ID!) { startTraining(studyId: $s, rounds: 2) { id } }',
      { s: createStudy.id },
      rosa,
    );
    runId = startTraining.id;

    const body = weights(0.1, 0.2, 0);
    const rejected = await postUpdate(api, {
      runId,
      round: 1,
      body,
      jws: await signManifest(
        manifestOf(nodeB.id, body, { runId, round: 1, contributors: [bobId] }),
        nodeB.key,
      ),
      token: nodeB.token,
    });
    expect(rejected.body.status).toBe('REJECTED');
    for (const [round, auc, loss] of [
      [1, 0.88, 0.35],
      [2, 0.02, 2.4],
    ]) {
      const status = await submitUpdate(api, nodeA, {
        runId,
        round,
        weights: [0.1, 0.2, 0],
        contributors: [ada.id],
        metrics: { auc, loss, accuracy: 0.5 },
      });
      expect(status).toBeLessThan(300);
    }
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('plots AUC on its own 0–1 scale, apart from loss and ε, so that its fall from 0.88 to 0.02 shows', async () => {
    rosaPage = await browser.open(context);
    await signIn(rosaPage, 'rosa', 'RESEARCHER');
    await openRun(rosaPage);
    const { metrics } = await apiRun();
    expect(metrics.map((m) => [m.auc, m.loss])).toEqual([
      [0.88, 0.35],
      [0.02, 2.4],
    ]);
    expect(metrics[1].epsilon).toBeGreaterThan(10);

    const chart = rosaPage.getByTestId('run-chart');
    await chart.locator('[data-panel] canvas[data-y-max]').nth(2).waitFor();
    // One plot per measure, each with the axis Chart.js settled on.
    const panels = (await chart
      .locator('[data-panel]')
      .evaluateAll((els) =>
        els.map((e) => [
          e.querySelector('h4')?.textContent,
          Number(e.querySelector('canvas')?.getAttribute('data-y-min')),
          Number(e.querySelector('canvas')?.getAttribute('data-y-max')),
        ]),
      )) as [string, number, number][];
    expect(panels.map(([title]) => title)).toEqual([
      'AUC (held out, 0 to 1; 0.5 is chance)',
      'Loss (held out, lower is better)',
      'Privacy spent so far, ε (per hospital)',
    ]);
    const [auc, loss, epsilon] = panels;
    expect(auc.slice(1)).toEqual([0, 1]);
    // AUC's fall spans most of its plot's height (on ε's axis it spanned under a twentieth).
    expect((0.88 - 0.02) / (auc[2] - auc[1])).toBeGreaterThan(0.8);
    expect(loss[1]).toBe(0);
    expect(loss[2]).toBeGreaterThanOrEqual(2.4);
    expect(loss[2]).toBeLessThan(metrics[1].epsilon);
    expect(epsilon[2]).toBeGreaterThanOrEqual(metrics[1].epsilon);

    // The numbers behind the plots, with how many patients and updates each round counted.
    expect(await cells(rosaPage, 'run-chart')).toEqual(
      metrics.map((m) => [m.auc, m.loss, m.epsilon, m.numContributors, m.numUpdates].map(String)),
    );
    await checkPage(rosaPage, 'researcher-run-scales');
  });

  it('says beside the run’s ε that it is per hospital and that no amplification by sampling is claimed', async () => {
    const meaning = rosaPage.locator('#run-epsilon-meaning');
    await expect(meaning.textContent()).resolves.toMatch(
      /per hospital .*not per patient.*sampling rate of 1.*no privacy amplification by sampling is claimed/,
    );
    // The ε plot points a screen reader to it.
    await expect(
      rosaPage.locator('[data-panel^="ε"] canvas').getAttribute('aria-describedby'),
    ).resolves.toBe('run-epsilon-meaning');
  });

  it('lists each round’s updates with node, status and reason, and how many patients it counted', async () => {
    const { updates } = await apiRun();
    // The latest round first.
    await expect(cells(rosaPage, 'round-updates')).resolves.toEqual([[nodeA.id, 'Accepted', '1']]);
    await expect(rosaPage.getByTestId('round-contributors').textContent()).resolves.toBe(
      'Round 2 was trained on the records of 1 patient (counted, never named), from 1 accepted of 1 updates received.',
    );
    await rosaPage.getByRole('combobox', { name: 'Round', exact: true }).selectOption('1');
    await rosaPage.getByRole('table', { name: 'The updates of round 1' }).waitFor();
    const reason = updates.find((u) => u.status === 'REJECTED')?.reason;
    expect(reason).toBe('1 of 1 contributors hold no active TRAIN consent for this study');
    await expect(cells(rosaPage, 'round-updates')).resolves.toEqual([
      [nodeB.id, `Rejected: ${reason}`, '1'],
      [nodeA.id, 'Accepted', '1'],
    ]);
    await expect(rosaPage.getByTestId('round-contributors').textContent()).resolves.toBe(
      'Round 1 was trained on the records of 1 patient (counted, never named), from 1 accepted of 2 updates received.',
    );
    // A reason counts patients; no page names one.
    expect(await rosaPage.content()).not.toContain(bobId);
    await checkPage(rosaPage, 'researcher-run-updates');
  });

  it('offers “Start a run” and “Deploy” to the study’s owner alone, and tells another researcher who may', async () => {
    await expect(rosaPage.getByRole('button', { name: 'Start a run' }).count()).resolves.toBe(1);
    await expect(
      rosaPage.getByRole('button', { name: 'Deploy', exact: true }).count(),
    ).resolves.toBe(1);

    const ruth = await browser.open(context);
    await signIn(ruth, 'ruth', 'RESEARCHER');
    await ruth.getByRole('heading', { name: 'Diabetes risk' }).waitFor();
    await expect(ruth.getByTestId('not-owner').textContent()).resolves.toBe(
      'Only the study’s owner, rosa, can start its runs.',
    );
    expect(await ruth.getByRole('button', { name: 'Start a run' }).count()).toBe(0);
    await openRun(ruth);
    await expect(ruth.getByTestId('deploy-not-yours').textContent()).resolves.toBe(
      'Not deployed. Only the study’s owner, or an administrator, can deploy this run’s model.',
    );
    expect(await ruth.getByRole('button', { name: 'Deploy', exact: true }).count()).toBe(0);
    // She may still read the run: its updates are every researcher's to see.
    await ruth.getByTestId('round-updates').waitFor();
    await checkPage(ruth, 'researcher-not-owner');
    await ruth.close();
  });

  it('lets an administrator deploy another’s run, as the server does, and says what its ε means', async () => {
    const admin = await browser.open(context);
    await signIn(admin, 'root', 'ADMIN');
    await admin.getByRole('heading', { name: 'Diabetes risk' }).waitFor();
    // Administrators neither create studies nor start runs; they may deploy.
    expect(await admin.getByRole('button', { name: 'Start a run' }).count()).toBe(0);
    expect(await admin.getByRole('form', { name: 'Create a study' }).count()).toBe(0);
    await openRun(admin);
    await admin.getByRole('button', { name: 'Deploy', exact: true }).click();
    const card = admin.locator(`[data-testid=deployed-model][data-run="${runId}"]`);
    await card.waitFor();
    const { deployedModels } = await api.ok<{ deployedModels: { epsilon: number }[] }>(
      `{ deployedModels { epsilon } }`,
      {},
      await api.token('root', 'ADMIN'),
    );
    expect(deployedModels).toHaveLength(1);
    await expect(card.getByTestId('deployed-epsilon').textContent()).resolves.toBe(
      `${deployedModels[0].epsilon.toFixed(2)} (δ = 1e-5, per hospital, not per patient)`,
    );
    await expect(
      card.getByTestId('deployed-epsilon').getAttribute('aria-describedby'),
    ).resolves.toBe('deployed-epsilon-meaning');
    await expect(admin.locator('#deployed-epsilon-meaning').textContent()).resolves.toMatch(
      /sampling rate of 1.*no privacy amplification by sampling is claimed/,
    );
    await checkPage(admin, 'admin-deployed-model');
    await admin.close();
  });

  it('reports no CSP refusal or script error on any page', () => {
    expect(browser.problems).toEqual([]);
  });
});

/**
 * Waits, frame by frame, until `condition` holds in the page. Each check goes through the
 * DevTools protocol, which the console's CSP does not govern; waitForFunction's polling
 * compiles its predicate inside the page, and `script-src 'self'` refuses that eval.
 */
async function framesUntil(page: Page, condition: string, frames = 240): Promise<void> {
  for (let frame = 0; frame < frames; frame++) {
    if (await page.evaluate(condition)) return;
    await page.evaluate(`new Promise((done) => requestAnimationFrame(() => done(null)))`);
  }
  throw new Error(`still not true after ${frames} frames: ${condition}`);
}
