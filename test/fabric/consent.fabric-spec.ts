import { consentSuite } from '../suites/consent';
import { FABRIC_LEDGER } from './ledger-under-test';

consentSuite(FABRIC_LEDGER);
