// Where Debian's Chromium is (browsers cannot be downloaded here: `apt-get install chromium`).
import { existsSync } from 'node:fs';

export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found) {
    throw new Error(
      'No Chromium found: install Debian’s package (apt-get install -y chromium) or set CHROMIUM_PATH.',
    );
  }
  return found;
}
