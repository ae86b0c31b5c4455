export { Actor, hasRole } from './actor';
export { AuthModule } from './auth.module';
export { CurrentActor, Public, Roles, ROLES_KEY, PUBLIC_KEY } from './decorators';
export { DevIssuer, DevTokenRequest } from './dev-issuer';
export { Role, ROLES, RoleEnum, isRole } from './roles';
export { TokenVerifier } from './token-verifier';
