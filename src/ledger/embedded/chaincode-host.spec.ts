// Loading the chaincode in this process must not change how the process fails: fabric's
// logger would keep it running after an uncaught exception and print unhandled rejections.
describe('the in-process chaincode host', () => {
  it('leaves no handler of fabric’s logger on uncaught exceptions or unhandled rejections', async () => {
    const names = (event: 'uncaughtException' | 'unhandledRejection') =>
      process.listeners(event).map((l) => l.name);
    await import('./chaincode-host');
    // The chaincode's contracts are loaded, and with them fabric-contract-api's logger.
    expect(
      Object.keys(require.cache).some((p) => p.includes('fabric-contract-api/lib/logger')),
    ).toBe(true);
    expect(names('uncaughtException')).not.toContain('bound _uncaughtException');
    expect(names('unhandledRejection')).not.toContain('loggerUnhandledRejectionFn');
  });
});
