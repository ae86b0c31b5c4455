import { registerEnumType } from '@nestjs/graphql';

export const ROLES = ['PATIENT', 'CLINICIAN', 'RESEARCHER', 'ADMIN', 'NODE'] as const;
export type Role = (typeof ROLES)[number];

/** GraphQL enum `Role` (contract). */
export const RoleEnum = Object.fromEntries(ROLES.map((r) => [r, r])) as { [K in Role]: K };
registerEnumType(RoleEnum, { name: 'Role' });

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
