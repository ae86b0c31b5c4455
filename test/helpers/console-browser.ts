// The browser suites' shared set-up: Debian's Chromium through playwright-core, a page of the
// console that records what the browser complained about, the development sign-in, and a
// check of each page with axe-core (no serious or critical violation) that also saves its
// screenshot.
import { source as axeSource } from 'axe-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { chromiumPath } from './chromium';
import { ensureConsoleBuilt } from './console-build';

/** Where each page's screenshot goes (ignored by git; docs/console holds the README's). */
export const SCREENSHOTS = join(__dirname, '..', 'console', 'screenshots');

export function launchChromium(): Promise<Browser> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core's serious and critical violations on the page as it stands. */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  // A string, evaluated in the page: the suite's own types know no DOM.
  const violations = (await page.evaluate(
    `axe.run(document).then((r) => r.violations)`,
  )) as AxeViolation[];
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    );
}

/** No serious accessibility violation on the page; then its screenshot, as `name`.png. */
export async function checkPage(page: Page, name: string): Promise<void> {
  expect(await seriousViolations(page)).toEqual([]);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * A new page at the console, whose CSP refusals and script errors are added to `problems`
 * (an API's 4xx answer, which the page shows as an error, is not a problem).
 */
export async function openConsole(
  context: BrowserContext,
  baseUrl: string,
  problems: string[],
): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${baseUrl}/console/`);
  // The sign-in the server offers is known once /console/config.json has answered.
  await page.locator('main h2').first().waitFor();
  return page;
}

/** Chromium for the console of the API at `url`, the console built first if its sources changed. */
export class ConsoleBrowser {
  /** Problems the browser reported on any page: CSP refusals, script errors. */
  readonly problems: string[] = [];

  private constructor(
    readonly browser: Browser,
    private readonly url: string,
  ) {}

  static async launch(url: string): Promise<ConsoleBrowser> {
    ensureConsoleBuilt();
    return new ConsoleBrowser(await launchChromium(), url);
  }

  context(viewport = { width: 1100, height: 800 }): Promise<BrowserContext> {
    return this.browser.newContext({ viewport });
  }

  /** A new tab on the console's sign-in page, its errors collected in `problems`. */
  open(context: BrowserContext): Promise<Page> {
    return openConsole(context, this.url, this.problems);
  }

  close(): Promise<void> {
    return this.browser.close();
  }
}

/** The development "sign in as" form, until the signed-in page shows. */
export async function signIn(
  page: Page,
  subject: string,
  role: string,
  org?: string,
): Promise<void> {
  await page.getByLabel('Subject (user id)').fill(subject);
  await page.getByLabel('Role').selectOption(role);
  if (org) await page.getByLabel('Organisation (optional)').fill(org);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Opens one of the signed-in person's pages from the navigation. */
export function goTo(page: Page, title: string): Promise<void> {
  return page.getByRole('navigation').getByRole('button', { name: title, exact: true }).click();
}

/** How far the page scrolls sideways, and the elements that stick out past its right edge. */
export async function sidewaysOverflow(page: Page): Promise<{ overflow: number; wide: string[] }> {
  const overflow = (await page.evaluate(
    `document.documentElement.scrollWidth - document.documentElement.clientWidth`,
  )) as number;
  const wide = (await page.evaluate(
    `[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth).map((e) => e.tagName + '.' + e.className)`,
  )) as string[];
  return { overflow, wide };
}

/** What the page keeps in the browser: storage and cookies, which must stay empty. */
export function storedInBrowser(page: Page): Promise<unknown> {
  return page.evaluate(
    `({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie })`,
  );
}
