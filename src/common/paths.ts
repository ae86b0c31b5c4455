import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The package root, whether running from src/ (tests) or dist/src/ (compiled). */
export const PROJECT_ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();
