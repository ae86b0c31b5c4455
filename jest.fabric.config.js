// The Fabric suites (`npm run test:fabric`): the Fabric adapter against a real network of
// native processes that the global setup brings up with fabric-network/network.sh and the
// global teardown always takes down. Kept apart from `npm test`, which needs no Go or Fabric.
const swc = ['@swc/jest', { swcrc: true }];
// As in jest.config.js: jose ships ESM only, and the suites that run the API sign tokens.
const esmPackages = ['jose'];

/** @type {import('jest').Config} */
module.exports = {
  displayName: 'fabric',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc, [`node_modules/(${esmPackages.join('|')})/.+\\.js$`]: swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  moduleNameMapper: {
    '^@custodia/chaincode$': '<rootDir>/chaincode/src/index.ts',
    '^@custodia/chaincode/(policy|errors|signed-consent)$': '<rootDir>/chaincode/src/$1.ts',
  },
  roots: ['<rootDir>/test/fabric'],
  testMatch: ['**/*.fabric-spec.ts'],
  // A shared suite's snapshot is the one its embedded spec commits (test/__snapshots__).
  snapshotResolver: '<rootDir>/test/fabric/snapshot-resolver.cjs',
  globalSetup: '<rootDir>/test/fabric/global-setup.ts',
  globalTeardown: '<rootDir>/test/fabric/global-teardown.ts',
  // One network for the run: suites share its ledger, so they run one after another.
  maxWorkers: 1,
  // Per test: a submit waits for a block (batch timeout 200 ms) and endorsement by two peers.
  testTimeout: 60000,
};
