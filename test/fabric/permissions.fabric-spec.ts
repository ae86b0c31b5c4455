import { permissionsSuite } from '../suites/permissions';
import { FABRIC_LEDGER } from './ledger-under-test';

permissionsSuite(FABRIC_LEDGER);
