// How the console words a record, in a real browser (Debian's Chromium, playwright-core)
// against a real API: every common type by its name, units of time in words, a value recorded
// as a bound kept with its comparator (and off the plotted line), a deceased patient's age at
// death, a study's codes by name, and a record the server withholds not blanking the rest.
import { BrowserContext, Page } from 'playwright-core';
import { checkPage, ConsoleBrowser, goTo, signIn } from './helpers/console-browser';
import { observation, vitalSign } from './helpers/fhir';
import { TestApi } from './helpers/test-api';

const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
const at = (date: string) => `${date}T09:00:00Z`;

/** One record of each common type, named in the element its type uses, and what it shows. */
const NAMED: [Record<string, unknown>, string][] = [
  [
    {
      resourceType: 'Immunization',
      status: 'completed',
      vaccineCode: {
        coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140', display: 'Influenza' }],
      },
      occurrenceDateTime: at('2020-10-01'),
    },
    'Influenza',
  ],
  [
    {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: {
        coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975' }],
        text: 'Metformin 500 mg tablet',
      },
      authoredOn: at('2021-03-04'),
    },
    'Metformin 500 mg tablet',
  ],
  [
    {
      resourceType: 'AllergyIntolerance',
      clinicalStatus: {
        coding: [
          {
            system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical',
            code: 'active',
          },
        ],
      },
      code: { coding: [{ system: SNOMED, code: '91936005', display: 'Allergy to penicillin' }] },
      recordedDate: at('2017-04-02'),
    },
    'Allergy to penicillin',
  ],
  [
    {
      resourceType: 'Procedure',
      status: 'completed',
      code: { coding: [{ system: SNOMED, code: '80146002' }] },
      performedDateTime: at('2018-06-01'),
    },
    // No text and no display: the code, rather than nothing.
    '80146002',
  ],
  [
    {
      resourceType: 'Encounter',
      status: 'finished',
      class: {
        system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
        code: 'AMB',
      },
      type: [{ coding: [{ system: SNOMED, code: '185349003', display: 'Check-up' }] }],
      period: { start: at('2022-02-02') },
    },
    'Check-up',
  ],
  [
    {
      resourceType: 'DiagnosticReport',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '58410-2', display: 'CBC panel' }] },
      effectiveDateTime: at('2023-05-05'),
    },
    'CBC panel',
  ],
];

function hba1c(value: number, date: string, comparator?: string) {
  const o = observation('4548-4', value, '%');
  return {
    ...o,
    valueQuantity: { ...o.valueQuantity, ...(comparator ? { comparator } : {}) },
    effectiveDateTime: at(date),
  };
}

describe('the console’s wording of records', () => {
  let api: TestApi;
  let browser: ConsoleBrowser;
  let context: BrowserContext;
  let page: Page;
  let dora: string;
  let doraId: string;
  const ids: Record<string, string> = {};

  const rowOf = (id: string) => page.locator(`tr[data-record="${id}"]`);

  async function register(token: string, name: string): Promise<string> {
    const { registerPatient } = await api.ok<{ registerPatient: { id: string } }>(
      `mutation($n: String) { registerPatient(displayName: $n) { id } }`,
      { n: name },
      token,
    );
    return registerPatient.id;
  }

  /** Signs in afresh, whoever was signed in (a failed case may have left someone). */
  async function signInAs(subject: string, role: string, org?: string) {
    const signOut = page.getByRole('button', { name: 'Sign out' });
    if (await signOut.count()) {
      await signOut.click();
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
    }
    await signIn(page, subject, role, org);
  }

  async function openDorasChart() {
    await signInAs('dr-lee', 'CLINICIAN', 'org1');
    await page.getByRole('button', { name: 'Open chart for Dora' }).click();
    await page.getByTestId('vitals').locator('table').waitFor();
  }

  beforeAll(async () => {
    api = await TestApi.start();
    browser = await ConsoleBrowser.launch(api.url);
    context = await browser.context();

    dora = await api.token('dora', 'PATIENT');
    doraId = await register(dora, 'Dora');
    ids.patient = await api.createRecord(dora, {
      resourceType: 'Patient',
      birthDate: '1940-05-10',
      deceasedDateTime: '2020-03-01',
    });
    for (const [i, [resource]] of NAMED.entries()) {
      ids[`named-${i}`] = await api.createRecord(dora, resource);
    }
    ids['hba1c-1'] = await api.createRecord(dora, hba1c(6.1, '2024-01-10'));
    ids['hba1c-bound'] = await api.createRecord(dora, hba1c(4, '2024-06-10', '<'));
    ids['hba1c-3'] = await api.createRecord(dora, hba1c(6.8, '2024-12-10'));
    ids.pulse = await api.createRecord(dora, {
      ...vitalSign('8867-4', 40),
      valueQuantity: { value: 40, comparator: '<', unit: '/min', system: UCUM, code: '/min' },
      effectiveDateTime: at('2025-01-02'),
    });
    // A duration with its UCUM code alone, and one whose unit text says it already.
    ids.days = await api.createRecord(dora, {
      ...observation('94016-3', 3),
      valueQuantity: { value: 3, system: UCUM, code: 'd' },
      effectiveDateTime: at('2025-01-03'),
    });
    ids.weeks = await api.createRecord(dora, {
      ...observation('94016-3', 2),
      valueQuantity: { value: 2, unit: 'weeks', system: UCUM, code: 'wk' },
      effectiveDateTime: at('2025-01-04'),
    });
    // As Synthea writes them: values to 15 digits, units as UCUM codes, a blood pressure in
    // components, a coded answer, a temperature taken by mouth.
    ids.co2 = await api.createRecord(dora, {
      ...observation('2028-9', 24.70967920687918, 'mmol/L'),
      effectiveDateTime: at('2025-01-05'),
    });
    ids.oral = await api.createRecord(dora, {
      ...vitalSign('8331-1', 38.748934253848105),
      valueQuantity: { value: 38.748934253848105, unit: 'Cel', system: UCUM, code: 'Cel' },
      effectiveDateTime: at('2025-01-06'),
    });
    const bp = vitalSign('85354-9', 0);
    delete (bp as { valueQuantity?: unknown }).valueQuantity;
    const pressure = (code: string, value: number) => ({
      code: { coding: [{ system: 'http://loinc.org', code }] },
      valueQuantity: { value, unit: 'mm[Hg]', system: UCUM, code: 'mm[Hg]' },
    });
    ids.bp = await api.createRecord(dora, {
      ...bp,
      component: [pressure('8480-6', 107.4650852484731), pressure('8462-4', 77.45937090159893)],
      effectiveDateTime: at('2025-01-07'),
    });
    const smoking = observation('72166-2', 0);
    delete (smoking as { valueQuantity?: unknown }).valueQuantity;
    ids.smoking = await api.createRecord(dora, {
      ...smoking,
      valueCodeableConcept: {
        coding: [{ system: SNOMED, code: '266919005', display: 'Never smoker' }],
      },
      effectiveDateTime: at('2025-01-08'),
    });
    await api.grantRead(dora, 'dr-lee');

    page = await browser.open(context);
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  it('names each common type of record by its code, a vaccine by its vaccine code', async () => {
    await openDorasChart();
    for (const [i, [, name]] of NAMED.entries()) {
      await expect(rowOf(ids[`named-${i}`]).locator('td').first().textContent()).resolves.toBe(
        name,
      );
    }
  });

  it('rounds measured values, writes UCUM codes as people write units, and reads components and coded answers', async () => {
    const first = (id: string) => rowOf(id).locator('td').first().textContent();
    await expect(first(ids.co2)).resolves.toBe('2028-9: 24.7 mmol/L');
    await expect(first(ids.oral)).resolves.toBe('8331-1: 38.7 °C');
    await expect(first(ids.bp)).resolves.toBe('85354-9: 107.5/77.5 mmHg');
    await expect(first(ids.smoking)).resolves.toBe('72166-2: Never smoker');
    // A temperature taken by mouth is the chart's body temperature, not "no value recorded".
    const vitals = page.getByTestId('vitals');
    await expect(
      vitals.locator('tr', { hasText: 'Body temperature' }).textContent(),
    ).resolves.toContain('38.7 °C');
    await expect(
      vitals.locator('tr', { hasText: 'Blood pressure' }).textContent(),
    ).resolves.toContain('107.5/77.5 mmHg');
  });

  it('spells out units of time and prefers the unit’s own text', async () => {
    await expect(rowOf(ids.days).locator('td').first().textContent()).resolves.toBe(
      '94016-3: 3 days',
    );
    await expect(rowOf(ids.weeks).locator('td').first().textContent()).resolves.toBe(
      '94016-3: 2 weeks',
    );
  });

  it('keeps a value recorded as a bound with its comparator, and off the plotted line', async () => {
    await expect(rowOf(ids['hba1c-bound']).locator('td').first().textContent()).resolves.toBe(
      '4548-4: < 4 %',
    );
    await expect(page.locator('[data-vital="Heart rate"] td').first().textContent()).resolves.toBe(
      '< 40 /min',
    );
    await page.getByLabel('Lab value').selectOption('4548-4');
    const chart = page.getByTestId('lab-chart');
    await expect(chart.locator('tbody td').allTextContents()).resolves.toEqual([
      '6.1',
      '< 4',
      '6.8',
    ]);
    await expect(page.getByTestId('lab-bounds').textContent()).resolves.toContain(
      'in the table but not on the line',
    );
    await checkPage(page, 'clinician-chart-record-wording');
  });

  it('gives a deceased patient’s age at death, not counted on to today', async () => {
    await expect(rowOf(ids.patient).locator('td').first().textContent()).resolves.toBe(
      'Born 1940-05-10, died 2020-03-01 at 79',
    );
    const eli = await api.token('eli', 'PATIENT');
    await register(eli, 'Eli');
    await api.createRecord(eli, {
      resourceType: 'Patient',
      birthDate: '1930-01-01',
      deceasedBoolean: true,
    });
    await signInAs('eli', 'PATIENT');
    const what = page.locator('.records-table td[data-label=What]');
    await what.first().waitFor();
    await expect(what.allTextContents()).resolves.toEqual(['Born 1930-01-01, deceased']);
  });

  it('names a study’s codes, with each code beside its name', async () => {
    await api.ok(
      `mutation { createStudy(input: { title: "Diabetes by age", features: ["2345-7", "30525-0"],
         label: "44054006" }) { id } }`,
      {},
      await api.token('rosa', 'RESEARCHER'),
    );
    await signInAs('dora', 'PATIENT');
    await goTo(page, 'Studies');
    const study = page.getByTestId('study');
    await study.getByRole('heading', { name: 'Diabetes by age' }).waitFor();
    await expect(study.textContent()).resolves.toContain(
      'Learns to predict Diabetes mellitus type 2 (44054006) from Glucose [Mass/volume] in Serum or Plasma (2345-7), Age (30525-0).',
    );
    await checkPage(page, 'patient-studies-named-codes');

    // The researcher's list words the same study the same way.
    await signInAs('rosa', 'RESEARCHER');
    const card = page.locator('li.card', { hasText: 'Diabetes by age' });
    await expect(card.locator('p.muted').first().textContent()).resolves.toBe(
      'Predicts Diabetes mellitus type 2 (44054006) from Glucose [Mass/volume] in Serum or Plasma (2345-7), Age (30525-0) · FEDAVG',
    );
  });

  it('shows every other record when the server withholds one: to the patient, how many and why; to a clinician, nothing of it', async () => {
    const bad = ids['hba1c-3'];
    await api.db.query(
      `UPDATE records SET ciphertext = overlay(ciphertext placing
         set_byte('\\x00'::bytea, 0, get_byte(ciphertext, 3) # 1) from 4 for 1)
       WHERE id = $1`,
      [bad],
    );
    const shownElsewhere = Object.values(ids).filter((id) => id !== bad);

    // To a grantee a record that fails its check is absent, as one that does not exist: no
    // notice, and not its id (its labels, which would admit the clinician, are not proven).
    await openDorasChart();
    const rows = await page
      .locator('section.panel[aria-label] tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-record')));
    expect(rows.sort()).toEqual(shownElsewhere.sort());
    await expect(page.getByTestId('withheld').count()).resolves.toBe(0);
    await expect(page.content()).resolves.not.toContain(bad);
    await checkPage(page, 'clinician-chart-withheld');

    await signInAs('dora', 'PATIENT');
    const withheld = page.getByTestId('withheld');
    await withheld.waitFor();
    await expect(withheld.locator('strong').textContent()).resolves.toBe(
      '1 record could not be shown.',
    );
    // Why, in words for the reader, and which record to report.
    await expect(withheld.textContent()).resolves.toContain(
      'could not open them or match them to the ledger',
    );
    await expect(withheld.textContent()).resolves.toContain(bad);
    await expect(page.locator('.records-table tbody tr').count()).resolves.toBe(
      shownElsewhere.length,
    );
    await expect(page.locator('[data-testid=timeline-item]').count()).resolves.toBe(
      shownElsewhere.length,
    );
    await checkPage(page, 'patient-records-withheld');
  });

  it('reports no CSP refusal or script error', () => {
    expect(doraId).toBeTruthy();
    expect(browser.problems).toEqual([]);
  });
});
