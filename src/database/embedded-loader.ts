/**
 * The embedded PostgreSQL launcher, loaded on demand: its package is ESM and ships a server
 * binary, so only embedded mode (and the test set-up) loads it.
 */
export function embeddedPostgres(): typeof import('./embedded-postgres') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./embedded-postgres') as typeof import('./embedded-postgres');
}

/**
 * embedded-postgres hooks SIGINT/SIGTERM/SIGHUP to stop its servers and exit(130) at once,
 * which would race an orderly shutdown (requests finished, API closed, database last). A
 * command that stops the database itself on those signals takes them over with this.
 */
export function takeOverShutdownSignals(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const exitHook = require('async-exit-hook') as { unhookEvent(event: string): void };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) exitHook.unhookEvent(signal);
}
