import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { roundClosingSuite } from './suites/round-closing';

roundClosingSuite(EMBEDDED_LEDGER);
