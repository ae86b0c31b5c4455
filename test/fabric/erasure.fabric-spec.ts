import { erasureSuite } from '../suites/erasure';
import { FABRIC_LEDGER } from './ledger-under-test';

erasureSuite(FABRIC_LEDGER);
