import { Role } from './roles';

/** Who is calling, as established by a verified token. */
export interface Actor {
  /** The token's subject. */
  id: string;
  roles: Role[];
  organizationId?: string;
}

export function hasRole(actor: Actor, ...roles: Role[]): boolean {
  return roles.some((r) => actor.roles.includes(r));
}
