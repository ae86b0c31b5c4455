// The patient's signing key in the web console, in a real browser (Debian's Chromium,
// playwright-core) against a real API and the embedded ledger: a key made by WebCrypto in the
// browser and registered, grants, revocations and choices signed with it as the chaincode
// verifies, a browser added beside a key made with the CLI, a lost key removed, signed-only
// consent on and off; and a server that hands the browser other terms to sign gets nothing.
import type { GrantRecord } from '@custodia/chaincode';
import { BrowserContext, Page } from 'playwright-core';
import { generateDeviceKey, signDetached } from '../src/consent/patient-signing';
import { Ledger, LEDGER } from '../src/ledger';
import {
  checkPage,
  ConsoleBrowser,
  goTo,
  sidewaysOverflow,
  signIn,
} from './helpers/console-browser';
import { TestApi } from './helpers/test-api';

interface ApiGrant {
  id: string;
  grantee: { id: string };
  status: string;
  patientSigned: boolean;
}

describe('signing consent in the web console', () => {
  let api: TestApi;
  let browser: ConsoleBrowser;
  let ledger: Ledger;

  beforeAll(async () => {
    api = await TestApi.start();
    browser = await ConsoleBrowser.launch(api.url);
    ledger = api.server.app.get<Ledger>(LEDGER);
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
  });

  async function patientPage(subject: string): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.context();
    const page = await browser.open(context);
    await signIn(page, subject, 'PATIENT');
    return { page, context };
  }

  async function grantsOf(token: string): Promise<ApiGrant[]> {
    const { consents } = await api.ok<{ consents: ApiGrant[] }>(
      `query { consents { id grantee { id } status patientSigned } }`,
      {},
      token,
    );
    return consents;
  }

  async function patientOf(token: string) {
    const { me } = await api.ok<{ me: { patientId: string } }>('{ me { patientId } }', {}, token);
    const { patient } = await api.ok<{
      patient: { requireSignedConsent: boolean; allowEmergencyAccess: boolean };
    }>(
      'query($p: ID!) { patient(id: $p) { requireSignedConsent allowEmergencyAccess } }',
      { p: me.patientId },
      token,
    );
    return { id: me.patientId, ...patient };
  }

  const keysOf = async (token: string, patientId: string) =>
    (
      await api.ok<{ patientKeys: { id: string }[] }>(
        'query($p: ID!) { patientKeys(patientId: $p) { id } }',
        { p: patientId },
        token,
      )
    ).patientKeys.map((k) => k.id);

  /** What this browser keeps in IndexedDB for the patient's key, or null. */
  const storedKey = (page: Page, patientId: string) =>
    page.evaluate(
      `new Promise((resolve, reject) => {
         const open = indexedDB.open('custodia-console');
         open.onerror = () => reject(open.error);
         open.onsuccess = () => {
           const get = open.result.transaction('device-keys').objectStore('device-keys').get(${JSON.stringify(patientId)});
           get.onsuccess = () => resolve(get.result
             ? { extractable: get.result.privateKey.extractable, kid: get.result.kid }
             : null);
         };
       })`,
    );

  /** Waits for the signing panel to say `text`. */
  const said = (page: Page, text: string) =>
    page.getByTestId('signing-status').filter({ hasText: text }).waitFor();

  async function grantTo(page: Page, granteeId: string): Promise<void> {
    await goTo(page, 'My consents');
    await page.getByLabel('Their id').fill(granteeId);
    await page.getByRole('button', { name: 'Grant access' }).click();
  }

  it('makes a key in the browser, signs grants, choices and revocations with it, and turns signed-only on and off', async () => {
    const { page, context } = await patientPage('sigrid');
    const token = await api.token('sigrid', 'PATIENT');
    const me = await patientOf(token);

    await goTo(page, 'Settings and my data');
    await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
    await page.locator('[data-testid=signing-state][data-registered=true]').waitFor();
    const [kid] = await keysOf(token, me.id);
    await expect(page.getByTestId('signing-state').textContent()).resolves.toContain(
      kid.slice(0, 12),
    );
    // The private key in IndexedDB is a CryptoKey that script can sign with but never read.
    const stored = await storedKey(page, me.id);
    expect(stored).toEqual({ extractable: false, kid });
    await checkPage(page, 'patient-signing-key');

    // Signed-only on: no signature needed.
    await page.getByRole('switch', { name: 'Accept only grants I signed' }).click();
    await said(page, 'Only grants you signed count now');
    expect((await patientOf(token)).requireSignedConsent).toBe(true);

    // Emergency access off, then on again on the same page: for a signed-only patient only
    // with a signature, which the page asks for although it loaded before signed-only was on.
    const emergencyState = (on: boolean) =>
      page.locator(`[data-testid=emergency-state][data-allowed=${on}]`).waitFor();
    await page.getByRole('button', { name: 'Turn emergency access off' }).click();
    await emergencyState(false);
    await page.getByRole('button', { name: 'Turn emergency access on' }).click();
    await emergencyState(true);
    expect(await page.locator('[role=alert]').count()).toBe(0);
    expect((await patientOf(token)).allowEmergencyAccess).toBe(true);

    // A grant made here is signed: the chaincode accepted it although unsigned ones are refused.
    await grantTo(page, 'dr-signed');
    const card = page.locator('[data-testid=grant][data-grantee=dr-signed]');
    await expect(card.textContent()).resolves.toContain('signed by you');
    const [grant] = (await grantsOf(token)).filter((g) => g.grantee.id === 'dr-signed');
    expect(grant).toMatchObject({ status: 'ACTIVE', patientSigned: true });
    const onLedger = await ledger.evaluate<GrantRecord>('consent', 'GetConsent', [grant.id]);
    expect(onLedger.signedBy).toBe(kid);

    // The revocation is signed too, and recorded as the patient's own.
    await goTo(page, 'My consents');
    await page.getByRole('button', { name: 'Revoke the grant to dr-signed' }).click();
    await card.getByTestId('grant-status').filter({ hasText: 'REVOKED' }).waitFor();
    const revoked = await ledger.evaluate<GrantRecord>('consent', 'GetConsent', [grant.id]);
    expect(revoked.revocationSignedBy).toBe(kid);

    // Signed-only off needs a signature over the setting's current version: the browser signs.
    await goTo(page, 'Settings and my data');
    await page.getByRole('switch', { name: 'Accept only grants I signed' }).click();
    await said(page, 'count again');
    expect((await patientOf(token)).requireSignedConsent).toBe(false);
    await context.close();
  });

  it('adds this browser beside a key made with the CLI, removes the CLI key, and adds a backup', async () => {
    const { page, context } = await patientPage('carl');
    const token = await api.token('carl', 'PATIENT');
    const me = await patientOf(token);
    const cliKey = await generateDeviceKey();
    await api.ok(
      'mutation($k: JSON!) { registerPatientKey(publicKeyJwk: $k) { id } }',
      { k: cliKey.publicJwk },
      token,
    );

    // Signed-only, and this browser holds no key: a grant here is refused, and the page says
    // where to get one.
    await api.ok('mutation { requireSignedConsent(require: true) { id } }', {}, token);
    await grantTo(page, 'dr-unsigned');
    await page.getByRole('alert').filter({ hasText: 'This needs your signature' }).waitFor();
    expect(await grantsOf(token)).toEqual([]);

    await goTo(page, 'Settings and my data');
    await expect(page.getByTestId('signing-state').textContent()).resolves.toContain(
      'made elsewhere',
    );
    await page.getByRole('button', { name: 'Add a key for this browser' }).click();
    const payload = (await page.getByTestId('key-payload').textContent())!;
    // The focus goes where the patient types next; at phone width nothing scrolls sideways.
    await expect(page.getByLabel('Signature').evaluate((e) => e.matches(':focus'))).resolves.toBe(
      true,
    );
    await page.setViewportSize({ width: 375, height: 740 });
    expect(await sidewaysOverflow(page)).toEqual({ overflow: 0, wide: [] });
    await checkPage(page, 'phone-patient-add-browser-key');
    await page.setViewportSize({ width: 1100, height: 800 });
    expect(JSON.parse(payload)).toMatchObject({
      type: 'custodia.patient-key/v1',
      patientId: me.id,
      remove: false,
    });
    // What `npx custodia sign --key FILE` prints for those bytes.
    await page.getByLabel('Signature').fill(await signDetached(cliKey.privateJwk, payload));
    await page.getByRole('button', { name: 'Register this browser’s key' }).click();
    await page.locator('[data-testid=signing-state][data-registered=true]').waitFor();
    expect(await keysOf(token, me.id)).toHaveLength(2);

    // The CLI's device is lost: the browser's key signs its removal.
    await page
      .getByRole('button', { name: `Remove key ${cliKey.publicJwk.kid!.slice(0, 12)}` })
      .click();
    await said(page, 'can no longer sign for you');
    const left = await keysOf(token, me.id);
    expect(left).toHaveLength(1);
    expect(left).not.toContain(cliKey.publicJwk.kid);

    // A backup key made with the CLI, added with this browser's signature.
    const backup = await generateDeviceKey();
    const field = page.getByLabel(/Add a backup key/);
    await field.fill('not json');
    await page.getByRole('button', { name: 'Add this key' }).click();
    await page.getByRole('alert').filter({ hasText: 'That is not a public key' }).waitFor();
    await field.fill(JSON.stringify(backup.publicJwk));
    await page.getByRole('button', { name: 'Add this key' }).click();
    await said(page, 'it can sign for you too');
    expect(await keysOf(token, me.id)).toEqual(expect.arrayContaining([backup.publicJwk.kid]));
    expect(await keysOf(token, me.id)).toHaveLength(2);
    await checkPage(page, 'patient-signing-keys');
    await context.close();
  });

  it('withdraws a study membership suspended by signed-only consent, and joins again signed', async () => {
    const { createStudy } = await api.ok<{ createStudy: { id: string } }>(
      `mutation { createStudy(input: { title: "Signed study", features: ["2345-7"], label: "44054006" }) { id } }`,
      {},
      await api.token('rhea', 'RESEARCHER'),
    );
    const { page, context } = await patientPage('stella');
    const token = await api.token('stella', 'PATIENT');
    const join = `mutation($s: ID!) { grantConsent(input: { granteeType: STUDY, granteeId: $s,
      purpose: RESEARCH, actions: [TRAIN] }) { id } }`;
    const unsigned = (
      await api.ok<{ grantConsent: { id: string } }>(join, { s: createStudy.id }, token)
    ).grantConsent.id;
    await goTo(page, 'Settings and my data');
    await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
    await page.locator('[data-testid=signing-state][data-registered=true]').waitFor();
    // Turning signed-only on says first which grants would stop counting.
    await page.getByRole('switch', { name: 'Accept only grants I signed' }).click();
    const confirm = page.getByTestId('signed-only-confirm');
    await expect(confirm.textContent()).resolves.toContain(`study ${createStudy.id}`);
    expect((await patientOf(token)).requireSignedConsent).toBe(false);
    await checkPage(page, 'patient-signed-only-confirm');
    await confirm.getByRole('button', { name: 'Accept only signed grants' }).click();
    await said(page, 'Only grants you signed count now');

    await goTo(page, 'Studies');
    const card = page.locator(`[data-testid=study][data-study="${createStudy.id}"]`);
    await card.getByTestId('study-grant-status').filter({ hasText: 'SUSPENDED' }).waitFor();
    await card.getByRole('button', { name: /^Withdraw the suspended grant/ }).click();
    await card.getByTestId('study-grant-status').filter({ hasText: 'REVOKED' }).waitFor();
    await card.getByRole('button', { name: /^Join/ }).click();
    await card.getByTestId('study-grant-status').filter({ hasText: 'ACTIVE' }).waitFor();
    const grants = await grantsOf(token);
    expect(grants.find((g) => g.id === unsigned)?.status).toBe('REVOKED');
    expect(grants.filter((g) => g.status === 'ACTIVE')).toEqual([
      expect.objectContaining({ grantee: { id: createStudy.id }, patientSigned: true }),
    ]);
    await context.close();
  });

  it('keeps only the public part of a pasted key file, and revokes unsigned once its key was removed elsewhere', async () => {
    const { page, context } = await patientPage('rita');
    const token = await api.token('rita', 'PATIENT');
    const me = await patientOf(token);
    const sent: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/graphql')) sent.push(r.postData() ?? '');
    });
    await goTo(page, 'Settings and my data');
    await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
    await page.locator('[data-testid=signing-state][data-registered=true]').waitFor();
    const [browserKid] = await keysOf(token, me.id);
    await grantTo(page, 'dr-rita');
    await page.locator('[data-testid=grant][data-grantee=dr-rita]').waitFor();

    // The key file pasted whole, secret part and all: only its public part leaves the page.
    const backup = await generateDeviceKey();
    await goTo(page, 'Settings and my data');
    const field = page.getByLabel(/Add a backup key/);
    await field.fill(JSON.stringify(backup.privateJwk));
    await page.getByRole('button', { name: 'Add this key' }).click();
    await said(page, 'nothing secret left this page');
    await expect(field.inputValue()).resolves.toBe('');
    expect(sent.some((body) => body.includes(backup.privateJwk.d!))).toBe(false);
    expect(await keysOf(token, me.id)).toContain(backup.publicJwk.kid);

    // The browser's key removed elsewhere, with the backup's signature.
    const browserJwk = (
      await api.ok<{ patientKeys: { id: string; publicKeyJwk: unknown }[] }>(
        'query($p: ID!) { patientKeys(patientId: $p) { id publicKeyJwk } }',
        { p: me.id },
        token,
      )
    ).patientKeys.find((k) => k.id === browserKid)!.publicKeyJwk;
    const { keyPayload } = await api.ok<{ keyPayload: string }>(
      'query($k: JSON!) { keyPayload(publicKeyJwk: $k, remove: true) }',
      { k: browserJwk },
      token,
    );
    await api.ok(
      'mutation($k: JSON!, $s: String!) { removePatientKey(publicKeyJwk: $k, signature: $s) { id } }',
      { k: browserJwk, s: await signDetached(backup.privateJwk, keyPayload) },
      token,
    );

    // Revoking is never blocked by a stale key: it goes unsigned.
    await goTo(page, 'My consents');
    await page.getByRole('button', { name: 'Revoke the grant to dr-rita' }).click();
    const card = page.locator('[data-testid=grant][data-grantee=dr-rita]');
    await card.getByTestId('grant-status').filter({ hasText: 'REVOKED' }).waitFor();
    const [grant] = (await grantsOf(token)).filter((g) => g.grantee.id === 'dr-rita');
    const revoked = await ledger.evaluate<GrantRecord>('consent', 'GetConsent', [grant.id]);
    expect(revoked.revocationSignedBy ?? null).toBeNull();
    await goTo(page, 'Settings and my data');
    await page.locator('[data-testid=signing-state][data-registered=false]').waitFor();
    await page.getByRole('button', { name: 'Forget it' }).click();
    await said(page, 'no longer holds a key');
    expect(await storedKey(page, me.id)).toBeNull();
    await context.close();
  });

  it('signs nothing, and changes nothing, when the server hands it other terms to sign; erasure forgets the key', async () => {
    const { page, context } = await patientPage('tess');
    const token = await api.token('tess', 'PATIENT');
    await goTo(page, 'Settings and my data');
    await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
    await page.locator('[data-testid=signing-state][data-registered=true]').waitFor();

    // A server (or anything between) that answers consentPayload for another grantee.
    await page.route('**/graphql', async (route) => {
      const body = route.request().postData() ?? '';
      if (!body.includes('consentPayload')) return route.continue();
      const response = await route.fetch();
      const json = (await response.json()) as { data: { consentPayload: string } };
      const terms = JSON.parse(json.data.consentPayload) as Record<string, unknown>;
      json.data.consentPayload = JSON.stringify({ ...terms, granteeId: 'dr-mallory' });
      return route.fulfill({ response, json });
    });
    await grantTo(page, 'dr-honest');
    await expect(page.getByRole('alert').textContent()).resolves.toContain(
      'other than what you asked for',
    );
    expect(await grantsOf(token)).toEqual([]);

    // Erasing their data forgets this browser's key too.
    await page.unroute('**/graphql');
    const me = await patientOf(token);
    expect(await storedKey(page, me.id)).not.toBeNull();
    await goTo(page, 'Settings and my data');
    await page.getByRole('button', { name: 'Erase my data…' }).click();
    await page.getByLabel('Type ERASE to confirm').fill('ERASE');
    await page.getByRole('button', { name: 'Erase all my data now' }).click();
    await page.getByTestId('signed-out-notice').waitFor();
    expect(await storedKey(page, me.id)).toBeNull();
    await context.close();
  });
});
