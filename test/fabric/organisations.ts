// Org1's and Org2's API instances for the Fabric suites: each with its own PostgreSQL (the
// global setup starts one per organisation) and its own peer identity, as README's "Run on
// Fabric" serves them; and a wait for what Org2's projector applies.
import { randomUUID } from 'node:crypto';
import { ConsentProjector } from '../../src/consent';
import type { LedgerEvent } from '../../src/ledger';
import { TestApi } from '../helpers/test-api';
import { orgApiEnv, orgPostgresUrl } from './network';

export async function startOrganisations(
  env: NodeJS.ProcessEnv = {},
): Promise<[org1: TestApi, org2: TestApi]> {
  // Each run's databases are new, so each instance's access log is a chain of its own.
  const run = randomUUID().slice(0, 8);
  const started = await Promise.allSettled(
    ([1, 2] as const).map((org) =>
      TestApi.start(
        { ...orgApiEnv(org), INSTANCE_ID: `org${org}-${run}`, ...env },
        { postgresUrl: orgPostgresUrl(org) },
      ),
    ),
  );
  const apis = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (apis.length < 2) {
    await Promise.all(apis.map((api) => api.stop()));
    throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
  }
  return apis as [TestApi, TestApi];
}

/** Resolves, with the time, when `api`'s projector has applied an event that `match` picks. */
export function applied(api: TestApi, match: (e: LedgerEvent) => boolean): Promise<number> {
  const events = api.server.app.get(ConsentProjector).events;
  return new Promise((resolve) => {
    const listener = (e: LedgerEvent) => {
      if (!match(e)) return;
      events.off('applied', listener);
      resolve(Date.now());
    };
    events.on('applied', listener);
  });
}
