/**
 * The embedded PostgreSQL launcher, loaded on demand: its package is ESM and ships a server
 * binary, so only embedded mode (and the test set-up) loads it.
 */
export function embeddedPostgres(): typeof import('./embedded-postgres') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./embedded-postgres') as typeof import('./embedded-postgres');
}
