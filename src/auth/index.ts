export { Actor, hasRole } from './actor';
export { AuthModule } from './auth.module';
export {
  AnyRole,
  CONSENT_CHECK_KEY,
  ConsentChecked,
  CurrentActor,
  Public,
  PUBLIC_KEY,
  Roles,
  ROLES_KEY,
} from './decorators';
export { DEV_NAME_RULE, DevIssuer, DevTokenRequest, isDevName } from './dev-issuer';
export { Role, ROLES, RoleEnum, isRole } from './roles';
export { TokenVerifier } from './token-verifier';
