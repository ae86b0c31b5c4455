// fabric-contract-api logs each decorator at info level as a contract module loads, and fixes
// the level of its loggers then: specs import this first, before any contract, to keep
// the test output to warnings and errors.
process.env.CORE_CHAINCODE_LOGGING_LEVEL ??= 'WARNING';
