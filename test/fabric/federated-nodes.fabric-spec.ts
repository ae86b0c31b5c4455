import { federatedNodesSuite } from '../suites/federated-nodes';
import { FABRIC_LEDGER } from './ledger-under-test';

federatedNodesSuite(FABRIC_LEDGER);
