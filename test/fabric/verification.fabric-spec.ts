import { verificationSuite } from '../suites/verification';
import { FABRIC_LEDGER } from './ledger-under-test';

verificationSuite(FABRIC_LEDGER);
