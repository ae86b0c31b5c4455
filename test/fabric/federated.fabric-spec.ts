import { federatedSuite } from '../suites/federated';
import { FABRIC_LEDGER } from './ledger-under-test';

federatedSuite(FABRIC_LEDGER);
