import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { erasureSuite } from './suites/erasure';

erasureSuite(EMBEDDED_LEDGER);
