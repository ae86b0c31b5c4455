import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { verificationSuite } from './suites/verification';

verificationSuite(EMBEDDED_LEDGER);
