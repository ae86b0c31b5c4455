// Loading the chaincode in this process must not change how the process fails: fabric's
// logger would keep it running after an uncaught exception and print unhandled rejections.
import './chaincode-host';

describe('the in-process chaincode host', () => {
  it('leaves no handler of fabric’s logger on uncaught exceptions or unhandled rejections', () => {
    // The chaincode's contracts are loaded, and with them fabric-contract-api's logger.
    expect(
      Object.keys(require.cache).some((p) => p.includes('fabric-contract-api/lib/logger')),
    ).toBe(true);
    expect(process.listeners('uncaughtException').map((l) => l.name)).not.toContain(
      'bound _uncaughtException',
    );
    expect(process.listeners('unhandledRejection').map((l) => l.name)).not.toContain(
      'loggerUnhandledRejectionFn',
    );
  });
});
