import { EMBEDDED_LEDGER } from './helpers/ledger-under-test';
import { permissionsSuite } from './suites/permissions';

permissionsSuite(EMBEDDED_LEDGER);
