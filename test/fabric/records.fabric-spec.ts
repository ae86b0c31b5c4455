import { recordsSuite } from '../suites/records';
import { FABRIC_LEDGER } from './ledger-under-test';

recordsSuite(FABRIC_LEDGER);
