import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { consentSuite } from './suites/consent';

consentSuite(EMBEDDED_LEDGER);
