// AI decisions in the web console, in a real browser (Debian's Chromium, playwright-core) against
// a real API: a researcher deploys a completed run (its node simulated by a signed update, as in
// ai-decisions.e2e-spec), a patient refuses then allows assessments, a clinician is told plainly
// why one is refused and sees the result of one made, and the patient sees every decision about
// them, page by page, and verifies it against the ledger. What the page shows is checked against
// the API; every page with axe-core.
import { BrowserContext, Page } from 'playwright-core';
import {
  checkPage,
  ConsoleBrowser,
  goTo,
  sidewaysOverflow,
  signIn,
} from './helpers/console-browser';
import { observation } from './helpers/fhir';
import { registerSimulatedNode, submitUpdate } from './helpers/simulated-node';
import { TestApi } from './helpers/test-api';

const GLUCOSE = '2345-7';
const AGE = '30525-0';
/** The final model: LOGISTIC over glucose and age, as float32 weights then bias. */
const WEIGHTS = [0.75, 0.5, -0.25];

interface ApiDecision {
  id: string;
  actorId: string;
  probability: number;
  inputCommitment: string;
  inputs: { features: { code: string; value: number; source: { recordId: string } }[] };
}

const percent = (p: number) => `${(p * 100).toFixed(1)} %`;

describe('AI decisions in the web console', () => {
  let api: TestApi;
  let browser: ConsoleBrowser;
  let context: BrowserContext;
  let researcher: string;
  let clinician: string;
  let studyId: string;
  let runId: string;
  const ada = { token: '', id: '', glucoseRecord: '' };
  const bob = { token: '', id: '' };
  /** One tab per person, each signed in once. */
  let patientPage: Page;
  let clinicianPage: Page;

  async function register(token: string, name: string): Promise<string> {
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      'mutation($n: String) { registerPatient(displayName: $n) { id } }',
      { n: name },
      token,
    );
    return registerPatient.id;
  }

  /** Every decision about Ada, newest first, as the API answers her. */
  function adasDecisions(): Promise<ApiDecision[]> {
    return api.everyItem<ApiDecision>(
      `query($p: ID!, $after: String) { aiDecisions(patientId: $p, first: 50, after: $after) {
         items { id actorId probability inputCommitment inputs } nextCursor } }`,
      { p: ada.id },
      ada.token,
      'aiDecisions',
    );
  }

  const allowsAi = async () =>
    (
      await api.ok<{ patient: { allowAiDecisions: boolean } }>(
        'query($p: ID!) { patient(id: $p) { allowAiDecisions } }',
        { p: ada.id },
        ada.token,
      )
    ).patient.allowAiDecisions;

  const storedDecisions = async () =>
    Number((await api.db.query('SELECT count(*) AS n FROM ai_decisions')).rows[0].n);

  /** The clinician's chart of the patient named `name`, opened from "My patients". */
  async function openChart(name: string) {
    await goTo(clinicianPage, 'My patients');
    await clinicianPage.getByRole('button', { name: `Open chart for ${name}` }).click();
    await clinicianPage.getByRole('combobox', { name: 'Model' }).waitFor();
  }

  const assessPanel = () => clinicianPage.getByRole('region', { name: 'Assess risk' });

  /** Presses "Assess risk" and answers the text of the refusal with `code` it shows. */
  async function refusal(code: string): Promise<string | null> {
    const panel = assessPanel();
    await panel.getByRole('button', { name: 'Assess risk' }).click();
    const alert = panel.locator(`[role=alert][data-code=${code}]`);
    await alert.waitFor();
    return alert.textContent();
  }

  beforeAll(async () => {
    api = await TestApi.start({ TRAINING_NODES: 'off' });
    browser = await ConsoleBrowser.launch(api.url);
    context = await browser.context();
    researcher = await api.token('rosa', 'RESEARCHER');
    clinician = await api.token('dr-grey', 'CLINICIAN', 'org1');
    const node = await registerSimulatedNode(api, await api.token('root', 'ADMIN'));

    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation($f: [String!]!) { createStudy(input: { title: "Diabetes risk", features: $f,
         label: "44054006", minNodes: 1 }) { id } }`,
      { f: [GLUCOSE, AGE] },
      researcher,
    );
    studyId = createStudy.id;

    ada.token = await api.token('ada', 'PATIENT');
    ada.id = await register(ada.token, 'Ada');
    await api.createRecord(ada.token, { resourceType: 'Patient', birthDate: '1960-05-01' });
    ada.glucoseRecord = await api.createRecord(ada.token, {
      ...observation(GLUCOSE, 118, 'mg/dL'),
      effectiveDateTime: '2026-02-01T08:00:00Z',
    });
    await api.grantRead(ada.token, 'dr-grey');
    await api.ok(
      `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
         purpose: RESEARCH, actions: [TRAIN] }) { id } }`,
      { s: studyId },
      ada.token,
    );
    // Bob has no glucose value: the model cannot be run on his records.
    bob.token = await api.token('bob', 'PATIENT');
    bob.id = await register(bob.token, 'Bob');
    await api.createRecord(bob.token, { resourceType: 'Patient', birthDate: '1970-01-01' });
    await api.grantRead(bob.token, 'dr-grey');

    // One round, one update: the run completes with exactly WEIGHTS.
    const { startTraining } = await api.ok<{ startTraining: { id: string } }>(
      'mutation($s: ID!) { startTraining(studyId: $s, rounds: 1) { id } }',
      { s: studyId },
      researcher,
    );
    runId = startTraining.id;
    const status = await submitUpdate(api, node, {
      runId,
      round: 1,
      weights: WEIGHTS,
      contributors: [ada.id],
    });
    expect(status).toBeLessThan(300);
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('deploys a completed run from the research page, listing its hash, AUC, ε and ledger transaction', async () => {
    const page = await browser.open(context);
    await signIn(page, 'rosa', 'RESEARCHER');
    const deployed = page.getByRole('region', { name: 'Deployed models' });
    await deployed.getByText('No model has been deployed yet.').waitFor();
    await page.getByRole('button', { name: /^Run .*: completed, round 1 of 1$/ }).click();
    await page.getByTestId('run-status').getByText('completed: round 1 of 1').waitFor();
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    const card = deployed.locator(`[data-testid=deployed-model][data-run="${runId}"]`);
    await card.waitFor();

    const { deployedModels, trainingRun } = await api.ok<{
      deployedModels: { runId: string; modelHash: string; ledgerTxId: string; auc: number }[];
      trainingRun: { modelHash: string };
    }>(
      `query($r: ID!) { deployedModels { runId modelHash ledgerTxId auc }
         trainingRun(id: $r) { modelHash } }`,
      { r: runId },
      researcher,
    );
    expect(deployedModels).toHaveLength(1);
    const [model] = deployedModels;
    expect(model).toMatchObject({ runId, modelHash: trainingRun.modelHash });
    await expect(card.getByTestId('deployed-hash').textContent()).resolves.toBe(model.modelHash);
    await expect(card.getByTestId('deployed-tx').textContent()).resolves.toBe(model.ledgerTxId);
    await expect(card.getByTestId('deployed-auc').textContent()).resolves.toBe('0.870');
    await expect(card.getByTestId('deployed-epsilon').textContent()).resolves.toBe(
      'none spent (trained without differential privacy)',
    );
    // The run says it is deployed, and offers no second deployment.
    await page.getByTestId('deploy-run').getByText('clinicians may assess risk with it').waitFor();
    expect(await page.getByRole('button', { name: 'Deploy', exact: true }).count()).toBe(0);
    await checkPage(page, 'researcher-deployed-model');

    await page.setViewportSize({ width: 375, height: 740 });
    const wide = await page.evaluate(
      `[...document.querySelectorAll('[data-testid=deployed-model] *, [data-testid=deploy-run] *')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth).map((e) => e.tagName + '.' + e.className)`,
    );
    expect(wide).toEqual([]);
    await page.close();
  });

  it('lets the patient refuse AI-assisted risk assessments, as the API then says', async () => {
    patientPage = await browser.open(context);
    await signIn(patientPage, 'ada', 'PATIENT');
    await goTo(patientPage, 'AI decisions');
    const state = patientPage.getByTestId('ai-setting-state');
    await expect(state.textContent()).resolves.toBe('AI-assisted risk assessments are allowed.');
    const toggle = patientPage.getByRole('switch', { name: 'Allow AI-assisted risk assessments' });
    await expect(toggle.isChecked()).resolves.toBe(true);
    // What refusing means is said beside the switch, and tied to it.
    const why = await patientPage
      .locator(`#${await toggle.getAttribute('aria-describedby')}`)
      .textContent();
    expect(why).toContain('If you refuse, clinicians cannot run a model on your records at all');
    await patientPage.getByText('No AI decision has been made about you.').waitFor();

    await toggle.click();
    await state.getByText('refused').waitFor();
    await expect(toggle.isChecked()).resolves.toBe(false);
    await patientPage.getByText('AI-assisted risk assessments are now refused.').waitFor();
    expect(await allowsAi()).toBe(false);
    await checkPage(patientPage, 'patient-ai-refused');
  });

  it('tells a clinician plainly that the patient refused, and assesses nothing', async () => {
    clinicianPage = await browser.open(context);
    await signIn(clinicianPage, 'dr-grey', 'CLINICIAN', 'org1');
    await openChart('Ada');
    const panel = assessPanel();
    await expect(
      panel.getByRole('combobox', { name: 'Model' }).locator('option').allTextContents(),
    ).resolves.toEqual([expect.stringMatching(/^Diabetes risk · AUC 0\.87 · [0-9a-f]{12}$/)]);
    const text = await refusal('FORBIDDEN');
    expect(text).toContain('This patient has refused AI-assisted risk assessments');
    expect(text).not.toMatch(/[{}]/);
    expect(await panel.getByTestId('assessment').count()).toBe(0);
    expect(await storedDecisions()).toBe(0);
    await checkPage(clinicianPage, 'clinician-ai-refused');
  });

  it('names the LOINC code a patient has no value for', async () => {
    await openChart('Bob');
    const text = await refusal('BAD_USER_INPUT');
    expect(text).toContain('a value it needs is missing');
    expect(text).toContain(`LOINC ${GLUCOSE}`);
    expect(text).not.toContain(AGE);
    expect(await storedDecisions()).toBe(0);
  });

  it('lets the patient allow assessments again', async () => {
    const toggle = patientPage.getByRole('switch', { name: 'Allow AI-assisted risk assessments' });
    // From the keyboard: the switch keeps the focus.
    await toggle.focus();
    await patientPage.keyboard.press('Space');
    await patientPage.getByTestId('ai-setting-state').getByText('allowed').waitFor();
    await expect(toggle.isChecked()).resolves.toBe(true);
    await expect(toggle.evaluate((e) => e.matches(':focus'))).resolves.toBe(true);
    expect(await allowsAi()).toBe(true);
  });

  it('assesses a consenting patient and shows the probability, the inputs and the commitment', async () => {
    await openChart('Ada');
    const panel = assessPanel();
    await panel.getByRole('button', { name: 'Assess risk' }).click();
    const result = panel.getByTestId('assessment');
    await result.waitFor();
    const [decision] = await adasDecisions();
    expect(decision.actorId).toBe('dr-grey');
    await expect(result.getByTestId('assessment-probability').textContent()).resolves.toBe(
      percent(decision.probability),
    );
    await expect(result.getByTestId('assessment-commitment').textContent()).resolves.toBe(
      decision.inputCommitment,
    );
    const inputs = await result.getByTestId('decision-input').allTextContents();
    expect(inputs).toHaveLength(2);
    expect(inputs[0]).toContain(`(LOINC ${GLUCOSE}): 118 mg/dL, from Observation`);
    expect(inputs[1]).toMatch(/\(LOINC 30525-0\): [\d.]+ years, from Patient/);
    // The chart's list of decisions holds the new one.
    const card = panel.locator(`[data-testid=decision][data-decision="${decision.id}"]`);
    await card.waitFor();
    await expect(card.getByTestId('decision-actor').textContent()).resolves.toBe('dr-grey');
    await checkPage(clinicianPage, 'clinician-ai-assessed');

    await clinicianPage.setViewportSize({ width: 375, height: 740 });
    const wide = await clinicianPage.evaluate(
      `[...document.querySelectorAll('#assess-h ~ *, #assess-h ~ * *')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth).map((e) => e.tagName + '.' + e.className)`,
    );
    expect(wide).toEqual([]);
    await clinicianPage.setViewportSize({ width: 1100, height: 800 });
  });

  it('shows the patient the decision about them, and verifies it against the ledger', async () => {
    await patientPage.getByRole('button', { name: 'Refresh' }).click();
    const [decision] = await adasDecisions();
    const card = patientPage.locator(`[data-testid=decision][data-decision="${decision.id}"]`);
    await card.waitFor();
    await expect(card.getByTestId('decision-probability').textContent()).resolves.toBe(
      percent(decision.probability),
    );
    await expect(card.getByTestId('decision-actor').textContent()).resolves.toBe('dr-grey');
    const glucose = card.locator(`[data-testid=decision-input][data-code="${GLUCOSE}"]`);
    await expect(glucose.textContent()).resolves.toContain('118 mg/dL, from Observation');
    await expect(glucose.locator('code').getAttribute('title')).resolves.toBe(ada.glucoseRecord);

    await card.getByRole('button', { name: 'Verify' }).click();
    const verdict = card.getByTestId('verification');
    await verdict.locator('[data-status=VERIFIED]').waitFor();
    await expect(verdict.textContent()).resolves.toBe(
      `VERIFIED Recomputed from the stored inputs: ${percent(decision.probability)}, as on the ledger.`,
    );
    await checkPage(patientPage, 'patient-ai-verified');

    // A probability altered in the database: the same button says so, with the problem.
    await api.db.query('UPDATE ai_decisions SET probability = 0.01 WHERE id = $1', [decision.id]);
    try {
      await card.getByRole('button', { name: 'Verify' }).click();
      await verdict.locator('[data-status=MISMATCH]').waitFor();
      await expect(
        card.getByTestId('verification-problems').locator('li').allTextContents(),
      ).resolves.toContain("the stored probability differs from the ledger's");
      await checkPage(patientPage, 'patient-ai-mismatch');
    } finally {
      await api.db.query('UPDATE ai_decisions SET probability = $2 WHERE id = $1', [
        decision.id,
        decision.probability,
      ]);
    }
  });

  it('pages the patient’s decisions newest first, older ones on request', async () => {
    // Ten more: eleven in all, one more than a page.
    for (let i = 0; i < 10; i++) {
      const { data, errors } = await api.gql(
        'mutation($p: ID!, $m: ID!) { assessRisk(patientId: $p, modelId: $m) { id } }',
        { p: ada.id, m: await deployedModelId() },
        clinician,
      );
      expect(errors).toBeUndefined();
      expect(data).toBeTruthy();
    }
    const all = await adasDecisions();
    expect(all).toHaveLength(11);
    await patientPage.getByRole('button', { name: 'Refresh' }).click();
    const shown = () =>
      patientPage
        .getByRole('list', { name: 'AI decisions, newest first' })
        .locator('[data-testid=decision]')
        .evaluateAll((cards) => cards.map((c) => c.getAttribute('data-decision')));
    await patientPage.locator(`[data-decision="${all[0].id}"]`).waitFor();
    await expect(shown()).resolves.toEqual(all.slice(0, 10).map((d) => d.id));
    await patientPage.getByRole('button', { name: 'Show older decisions' }).click();
    await patientPage.locator(`[data-decision="${all[10].id}"]`).waitFor();
    await expect(shown()).resolves.toEqual(all.map((d) => d.id));
    expect(await patientPage.getByRole('button', { name: 'Show older decisions' }).count()).toBe(0);

    await patientPage.setViewportSize({ width: 375, height: 740 });
    expect(await sidewaysOverflow(patientPage)).toEqual({ overflow: 0, wide: [] });
    await checkPage(patientPage, 'phone-patient-ai-decisions');
  });

  it('reports no CSP refusal or script error on any page', () => {
    expect(browser.problems).toEqual([]);
  });

  async function deployedModelId(): Promise<string> {
    const { deployedModels } = await api.ok<{ deployedModels: { id: string }[] }>(
      '{ deployedModels { id } }',
      {},
      clinician,
    );
    return deployedModels[0].id;
  }
});
