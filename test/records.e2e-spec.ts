import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { recordsSuite } from './suites/records';

recordsSuite(EMBEDDED_LEDGER);
