import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { federatedSuite } from './suites/federated';

federatedSuite(EMBEDDED_LEDGER);
