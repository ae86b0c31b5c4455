// The ledger an e2e suite runs against: the embedded one in `npm test`, Fabric in
// `npm run test:fabric` (test/fabric/ledger-under-test.ts). A suite written as a function of it
// runs unchanged on both. A test that only makes sense where the ledger has some capability
// says so with `itNeeds`: elsewhere it becomes a test that the capability is really absent, so
// nothing is skipped in silence.
import { TestApi } from './test-api';

export type LedgerCapability =
  /**
   * The ledger's blocks, world state and history live in the API's own database: a test can
   * tamper with them there, and `verify-ledger` (verifyAll) walks them.
   */
  'chain-in-database';

export interface LedgerUnderTest {
  name: 'embedded' | 'fabric';
  capabilities: ReadonlySet<LedgerCapability>;
  /** Starts an API on this ledger, with a fresh database of its own. */
  startApi(env?: NodeJS.ProcessEnv, options?: { captureLogs?: boolean }): Promise<TestApi>;
}

export const EMBEDDED_LEDGER: LedgerUnderTest = {
  name: 'embedded',
  capabilities: new Set(['chain-in-database']),
  startApi: (env, options) => TestApi.start(env, options),
};

/** What shows that an API's ledger lacks a capability. */
const ABSENCE: Record<LedgerCapability, (api: TestApi) => Promise<void>> = {
  'chain-in-database': async (api) => {
    const { rows } = await api.db.query('SELECT count(*)::int AS n FROM ledger_blocks');
    expect(rows[0].n).toBe(0);
  },
};

/**
 * `it(name, fn)` where the ledger has `capability`; on a ledger without it, a test named for
 * what it needs, which checks through `api()` that the capability is indeed absent.
 */
export function itNeeds(
  ledger: LedgerUnderTest,
  capability: LedgerCapability,
  name: string,
  fn: () => Promise<void>,
  api: () => TestApi,
  timeout?: number,
): void {
  if (ledger.capabilities.has(capability)) {
    it(name, fn, timeout);
    return;
  }
  it(`${name}: not on ${ledger.name}, which lacks ${capability}`, () => ABSENCE[capability](api()));
}
