import { roundClosingSuite } from '../suites/round-closing';
import { FABRIC_LEDGER } from './ledger-under-test';

roundClosingSuite(FABRIC_LEDGER);
