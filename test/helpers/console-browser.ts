// The web console in Debian's Chromium for the browser suites: launching it against a running
// API, signing in through the console's own form, and checking a page with axe-core (no serious
// or critical violation) before saving its screenshot.
import { source as axeSource } from 'axe-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { chromiumPath } from './chromium';
import { ensureConsoleBuilt } from './console-build';

export const SCREENSHOTS = join(__dirname, '..', 'console', 'screenshots');

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

export class ConsoleBrowser {
  /** Problems the browser reported on any page: CSP refusals, script errors. */
  readonly problems: string[] = [];

  private constructor(
    readonly browser: Browser,
    private readonly url: string,
  ) {}

  /** Builds the console if its sources changed, and launches Chromium for the API at `url`. */
  static async launch(url: string): Promise<ConsoleBrowser> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    ensureConsoleBuilt();
    const browser = await chromium.launch({
      executablePath: chromiumPath(),
      args: ['--no-sandbox'],
    });
    return new ConsoleBrowser(browser, url);
  }

  context(viewport = { width: 1100, height: 800 }): Promise<BrowserContext> {
    return this.browser.newContext({ viewport });
  }

  /** A new tab on the console's sign-in page, its errors collected in `problems`. */
  async open(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) this.problems.push(m.text());
    });
    page.on('pageerror', (e) => this.problems.push(e.message));
    await page.goto(`${this.url}/console/`);
    return page;
  }

  close(): Promise<void> {
    return this.browser.close();
  }
}

/** Signs in with the development form and waits for the signed-in pages. */
export async function signIn(page: Page, subject: string, role: string, org?: string) {
  await page.getByLabel('Subject (user id)').fill(subject);
  await page.getByLabel('Role').selectOption(role);
  if (org) await page.getByLabel('Organisation (optional)').fill(org);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** axe finds nothing serious on the page; then its screenshot is saved under `name`. */
export async function checkPage(page: Page, name: string) {
  expect(await seriousViolations(page)).toEqual([]);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
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
