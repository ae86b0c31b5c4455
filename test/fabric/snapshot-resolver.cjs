// The Fabric spec of a shared suite (test/suites/) checks the very snapshot its embedded spec
// commits, test/fabric/NAME.fabric-spec.ts ↔ test/__snapshots__/NAME.e2e-spec.ts.snap: one
// file says what the API answers, whichever ledger it runs on.
const FABRIC_SPEC = /\/test\/fabric\/([^/]+)\.fabric-spec\.ts$/;
const E2E_SNAPSHOT = /\/test\/__snapshots__\/([^/]+)\.e2e-spec\.ts$/;

module.exports = {
  resolveSnapshotPath: (testPath, ext) =>
    testPath.replace(FABRIC_SPEC, '/test/__snapshots__/$1.e2e-spec.ts') + ext,
  resolveTestPath: (snapshotPath, ext) =>
    snapshotPath.slice(0, -ext.length).replace(E2E_SNAPSHOT, '/test/fabric/$1.fabric-spec.ts'),
  testPathForConsistencyCheck: '/custodia/test/fabric/permissions.fabric-spec.ts',
};
