// The Fabric network as the ledger of the shared e2e suites (test/suites/): an API of Org1 on
// Org1's PostgreSQL and peer identity, with an access-log chain of its own per API.
import { randomUUID } from 'node:crypto';
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import { TestApi } from '../helpers/test-api';
import { orgApiEnv, orgPostgresUrl } from './network';

export const FABRIC_LEDGER: LedgerUnderTest = {
  name: 'fabric',
  capabilities: new Set(),
  startApi: (env, options) =>
    TestApi.start(
      {
        ...orgApiEnv(1),
        INSTANCE_ID: `suite-${randomUUID().slice(0, 8)}`,
        // The shared suites play clinicians of several organisations against this one instance
        // (ORGANIZATION grants to org1 and org2): tokens may name any organisation here.
        ORG_CLAIMS: 'any',
        ...env,
      },
      { ...options, postgresUrl: orgPostgresUrl(1) },
    ),
};
