#!/usr/bin/env node
// Runs the compiled CLI, compiling it first when dist/ is missing or older than the sources,
// so that a fresh clone works with `npx custodia ...` right after `npm install`.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, readdirSync, statSync, utimesSync } = require('node:fs');
const { dirname, join } = require('node:path');

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'src', 'cli.js');
const buildInfo = join(root, 'dist', '.tsbuildinfo');

// Unit specs are not compiled (tsconfig.build.json leaves them out), so a change to one
// does not refresh dist/.tsbuildinfo: counted, it would make every command compile again.
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path));
    else if (!entry.name.endsWith('.spec.ts')) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

// The chaincode workspace first: the API imports its compiled consent rule.
const chaincode = join(root, 'chaincode');
const chaincodeBuilt = join(chaincode, 'dist', 'index.js');
const sources = ['src', 'migrations', 'chaincode/src'].map((d) => join(root, d)).filter(existsSync);
const stale =
  !existsSync(cli) ||
  !existsSync(buildInfo) ||
  (existsSync(chaincode) && !existsSync(chaincodeBuilt)) ||
  Math.max(...sources.map(newest)) > statSync(buildInfo).mtimeMs;
if (stale && sources.length > 0) {
  process.stderr.write('custodia: compiling the sources (first run or after a change)…\n');
  const tsc = (project) =>
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', project], {
      stdio: ['ignore', 'inherit', 'inherit'],
      cwd: root,
    });
  if (existsSync(chaincode)) tsc(join(chaincode, 'tsconfig.json'));
  tsc(join(root, 'tsconfig.build.json'));
  // tsc leaves its build info alone when no output changed (a source touched, not edited):
  // marked now, so that the next command does not compile again.
  const now = new Date();
  utimesSync(buildInfo, now, now);
}
// `serve` serves the web console at /console: build it when it is missing or older than its
// sources. Vite is a development dependency: where it is absent, /console says how to build.
const consoleDir = join(root, 'console');
const consoleIndex = join(consoleDir, 'dist', 'index.html');
function newestConsoleSource(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newestConsoleSource(path));
    else latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}
if (
  process.argv[2] === 'serve' &&
  existsSync(consoleDir) &&
  (!existsSync(consoleIndex) || newestConsoleSource(consoleDir) > statSync(consoleIndex).mtimeMs)
) {
  let vite;
  try {
    vite = join(dirname(require.resolve('vite/package.json', { paths: [root] })), 'bin', 'vite.js');
  } catch {
    process.stderr.write('custodia: the web console is not built and vite is not installed\n');
  }
  if (vite) {
    process.stderr.write('custodia: building the web console…\n');
    execFileSync(
      process.execPath,
      [vite, 'build', '--config', join(consoleDir, 'vite.config.mts'), '--logLevel', 'warn'],
      { stdio: ['ignore', 'inherit', 'inherit'], cwd: root },
    );
  }
}

let main;
try {
  ({ main } = require(cli));
} catch (e) {
  // A broken or half-built dist/ (a missing module, say): say so and fail, never exit 0.
  process.stderr.write(
    `custodia: cannot load the CLI (${e.message.split('\n')[0]}); run npm run build\n`,
  );
  process.exit(1);
}
main(process.argv).catch((e) => {
  process.stderr.write(`custodia: ${e.message}\n`);
  process.exit(1);
});
