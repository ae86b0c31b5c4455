// fabric-network/network.sh without Fabric: stub binaries laid out as a release archive (bin/
// and config/) drive `up` into a failure, and nothing may be left behind (no process, no
// .state, no network directory). Runs on a copy of fabric-network/, with its own TMPDIR, so a
// real network of this checkout is never touched. Needs the network's ports to be free.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = join(__dirname, '..', 'fabric-network');

/** A stub that succeeds, or fails as a plain command does under set -e. */
const ok = '#!/usr/bin/env bash\nexit 0\n';
const fails = (name: string) => `#!/usr/bin/env bash\necho "stub ${name} fails" >&2\nexit 1\n`;
/** Passes build.sh's check that the binaries are Fabric 3.1.5, so that nothing is built. */
const peer = '#!/usr/bin/env bash\n[[ $1 == version ]] && printf "peer:\\n Version: 3.1.5\\n"\n';
/** Records which core.yaml `up` copied into the network's config, then fails. */
const cryptogenRecordingConfig = (record: string) =>
  `#!/usr/bin/env bash\ncp "$FABRIC_CFG_PATH/core.yaml" '${record}'\nexit 1\n`;
/**
 * An orderer that stays up and is healthy: answers /healthz on its operations address, and
 * accepts connections on its admin address (where osnadmin joins it to the channel).
 */
const healthyOrderer = (pidFile: string) => `#!/usr/bin/env node
require('node:fs').writeFileSync('${pidFile}', String(process.pid));
const [host, port] = process.env.ORDERER_OPERATIONS_LISTENADDRESS.split(':');
require('node:http')
  .createServer((req, res) => res.end(JSON.stringify({ status: 'OK' })))
  .listen(Number(port), host);
const [adminHost, adminPort] = process.env.ORDERER_ADMIN_LISTENADDRESS.split(':');
require('node:net').createServer((socket) => socket.end()).listen(Number(adminPort), adminHost);
`;

interface Layout {
  dir: string;
  script: string;
  bin: string;
  config: string;
  tmp: string;
}

function layout(stubs: Record<string, string>): Layout {
  const dir = mkdtempSync(join(tmpdir(), 'custodia-network-sh-'));
  const copy = join(dir, 'fabric-network');
  cpSync(SOURCE, copy, {
    recursive: true,
    filter: (src) => !/\/fabric-network\/(bin|\.state)$/.test(src),
  });
  const bin = join(dir, 'release', 'bin');
  const config = join(dir, 'release', 'config');
  const tmp = join(dir, 'tmp');
  for (const d of [bin, config, tmp]) mkdirSync(d, { recursive: true });
  writeFileSync(join(config, 'core.yaml'), '# core.yaml of the release\n');
  writeFileSync(join(config, 'orderer.yaml'), '# orderer.yaml of the release\n');
  const all = { peer, orderer: ok, cryptogen: ok, configtxgen: ok, osnadmin: ok, ...stubs };
  for (const [name, body] of Object.entries(all)) {
    writeFileSync(join(bin, name), body);
    chmodSync(join(bin, name), 0o755);
  }
  return { dir, script: join(copy, 'network.sh'), bin, config, tmp };
}

function up(l: Layout, env: Record<string, string> = {}) {
  const base = { ...process.env };
  delete base.FABRIC_CFG_PATH;
  const run = spawnSync('bash', [l.script, 'up'], {
    env: { ...base, FABRIC_BIN: l.bin, TMPDIR: l.tmp, ...env },
    encoding: 'utf8',
    timeout: 50_000,
  });
  return { status: run.status, log: `${run.stdout}${run.stderr}` };
}

function expectNothingLeft(l: Layout, log: string) {
  expect(log).not.toContain('unbound variable');
  expect(log).toContain('[fabric] up failed');
  expect(log).toContain('[fabric] network down');
  expect(existsSync(join(l.dir, 'fabric-network', '.state'))).toBe(false);
  expect(readdirSync(l.tmp)).toEqual([]);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('fabric-network/network.sh up, when a step fails', () => {
  const layouts: Layout[] = [];
  const make = (stubs: Record<string, string>) => {
    const l = layout(stubs);
    layouts.push(l);
    return l;
  };
  afterAll(() => {
    for (const l of layouts) {
      // A stub orderer that a failing test left running is stopped here, not left behind.
      const pidFile = join(l.dir, 'orderer.pid');
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8'));
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      }
      rmSync(l.dir, { recursive: true, force: true });
    }
  });

  it('takes the network down when a plain command fails, leaving no .state or directory', () => {
    const l = make({ cryptogen: fails('cryptogen') });
    const { status, log } = up(l);
    expect(status).not.toBe(0);
    expect(log).toContain('stub cryptogen fails');
    expectNothingLeft(l, log);
  });

  it('stops the processes it had started', () => {
    const l = make({ osnadmin: fails('osnadmin') });
    const pidFile = join(l.dir, 'orderer.pid');
    writeFileSync(join(l.bin, 'orderer'), healthyOrderer(pidFile));
    const { status, log } = up(l);
    expect(status).not.toBe(0);
    expect(log).toContain('started orderer');
    expect(log).toContain('stub osnadmin fails');
    expect(log).toMatch(/stopping orderer \(pid \d+\)/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(pid)).toBe(false);
    expectNothingLeft(l, log);
  });

  describe('takes core.yaml and orderer.yaml', () => {
    it('from FABRIC_CFG_PATH first, and says so', () => {
      const l = make({});
      const record = join(l.dir, 'copied-core.yaml');
      writeFileSync(join(l.bin, 'cryptogen'), cryptogenRecordingConfig(record));
      const own = join(l.dir, 'own-config');
      mkdirSync(own);
      writeFileSync(join(own, 'core.yaml'), '# my core.yaml\n');
      writeFileSync(join(own, 'orderer.yaml'), '# my orderer.yaml\n');
      const { log } = up(l, { FABRIC_CFG_PATH: own });
      expect(log).toContain(`core.yaml and orderer.yaml from FABRIC_CFG_PATH (${own})`);
      expect(readFileSync(record, 'utf8')).toBe('# my core.yaml\n');
      expectNothingLeft(l, log);
    });

    it('else from config/ beside FABRIC_BIN, as a release archive unpacks, and says so', () => {
      const l = make({});
      const record = join(l.dir, 'copied-core.yaml');
      writeFileSync(join(l.bin, 'cryptogen'), cryptogenRecordingConfig(record));
      const { log } = up(l);
      expect(log).toContain(
        `core.yaml and orderer.yaml from the release's config/ beside FABRIC_BIN (${l.config})`,
      );
      expect(readFileSync(record, 'utf8')).toBe('# core.yaml of the release\n');
      expectNothingLeft(l, log);
    });

    it('and stops, naming it, when FABRIC_CFG_PATH holds neither', () => {
      const l = make({});
      const empty = join(l.dir, 'empty');
      mkdirSync(empty);
      const { status, log } = up(l, { FABRIC_CFG_PATH: empty });
      expect(status).not.toBe(0);
      expect(log).toContain(`FABRIC_CFG_PATH=${empty} holds no core.yaml and orderer.yaml`);
      expectNothingLeft(l, log);
    });
  });
});
