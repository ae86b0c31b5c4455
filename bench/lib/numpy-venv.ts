// The Python that runs the numpy baselines: bench/.venv, created and filled from
// bench/requirements.txt the first time (and whenever it lacks the pinned numpy), so that a
// fresh machine needs python3 with its venv module and access to PyPI, nothing installed by
// hand. Each step is printed; a missing python3 or venv module stops with what to install.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const BENCH = resolve(__dirname, '..', '..', '..', 'bench');
const VENV = resolve(BENCH, '.venv');
const REQUIREMENTS = resolve(BENCH, 'requirements.txt');
const PYTHON = resolve(VENV, 'bin', 'python');

const HOW =
  'The numpy comparison needs Python 3.11 or later with its venv module and pip ' +
  '(Debian/Ubuntu: apt-get install python3 python3-venv), and access to PyPI; ' +
  'or run without it: npm run bench:fl-aggregate -- --no-numpy';

function run(command: string, args: string[], quiet = false): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    encoding: 'utf8',
    stdio: quiet ? 'pipe' : ['ignore', 'inherit', 'inherit'],
  });
}

function pinnedNumpy(): string {
  const pin = /^numpy==(\S+)/m.exec(readFileSync(REQUIREMENTS, 'utf8'));
  if (!pin) throw new Error(`${REQUIREMENTS} does not pin numpy (numpy==X.Y.Z)`);
  return pin[1];
}

function installedNumpy(): string | null {
  if (!existsSync(PYTHON)) return null;
  const out = run(PYTHON, ['-c', 'import numpy; print(numpy.__version__)'], true);
  return out.status === 0 ? out.stdout.trim() : null;
}

/** The path of a python with the pinned numpy, creating bench/.venv if need be. */
export function numpyPython(): string {
  const wanted = pinnedNumpy();
  const found = installedNumpy();
  if (found === wanted) return PYTHON;
  if (!existsSync(PYTHON)) {
    const python3 = run('python3', ['--version'], true);
    if (python3.error || python3.status !== 0) {
      throw new Error(`python3 was not found. ${HOW}`);
    }
    console.log(`numpy baselines: creating ${VENV} (${python3.stdout.trim()})`);
    const venv = run('python3', ['-m', 'venv', VENV]);
    if (venv.status !== 0 || !existsSync(PYTHON)) {
      throw new Error(`python3 -m venv ${VENV} failed. ${HOW}`);
    }
  }
  console.log(
    `numpy baselines: installing numpy ${wanted}${found ? ` (the venv has ${found})` : ''} ` +
      `from ${REQUIREMENTS}`,
  );
  const pip = run(PYTHON, [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '-r',
    REQUIREMENTS,
  ]);
  if (pip.status !== 0) throw new Error(`pip install -r ${REQUIREMENTS} failed. ${HOW}`);
  const now = installedNumpy();
  if (now !== wanted) throw new Error(`${PYTHON} has numpy ${now}, not ${wanted}. ${HOW}`);
  return PYTHON;
}
