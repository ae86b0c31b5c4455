// Builds the web console (console/dist) when it is missing or older than its sources, so that
// a browser suite works from a fresh clone with `npm test` alone (`npm run build` builds it too).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CONSOLE_DIST } from '../../src/console';
import { PROJECT_ROOT } from '../../src/common/paths';

const SOURCES = join(PROJECT_ROOT, 'console');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export function ensureConsoleBuilt(): void {
  const index = join(CONSOLE_DIST, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestSource(SOURCES)) return;
  execFileSync(
    process.execPath,
    [
      join(dirname(require.resolve('vite/package.json')), 'bin', 'vite.js'),
      'build',
      '--config',
      join(SOURCES, 'vite.config.mts'),
      '--logLevel',
      'warn',
    ],
    {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
}
