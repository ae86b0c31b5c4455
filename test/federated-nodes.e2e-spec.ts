import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { federatedNodesSuite } from './suites/federated-nodes';

federatedNodesSuite(EMBEDDED_LEDGER);
