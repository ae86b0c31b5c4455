// The development sign-in mints a token for anyone, ADMIN included: it answers loopback only.
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForbiddenError } from '../common/errors';
import { DevIssuer } from './dev-issuer';
import { DevTokenController } from './dev-token.controller';

const from = (
  remoteAddress: string,
  headers: Record<string, string | undefined> = { host: 'localhost:3000' },
) => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;

describe('POST /auth/dev-token, by where the request comes from', () => {
  let dir: string;
  let controller: DevTokenController;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodia-dev-token-'));
    controller = new DevTokenController(await DevIssuer.open(dir, 'custodia-dev', 'custodia'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it.each(['127.0.0.1', '::1', '::ffff:127.0.0.1'])('mints for %s', async (address) => {
    const minted = await controller.mint({ sub: 'alice', role: 'ADMIN' }, from(address));
    expect(minted.token.split('.')).toHaveLength(3);
  });

  it.each(['192.0.2.7', '::ffff:192.0.2.7', 'fd00::2', ''])('refuses %j', async (address) => {
    await expect(
      controller.mint({ sub: 'alice', role: 'ADMIN' }, from(address)),
    ).rejects.toBeInstanceOf(ForbiddenError);
  });

  it.each([
    { host: 'localhost:3000' },
    { host: '127.0.0.1:3000', origin: 'http://127.0.0.1:3000' },
    { host: '[::1]:3000', origin: 'http://[::1]:3000' },
    { host: 'LOCALHOST', origin: 'https://localhost' },
  ])('mints for a request addressed to this machine: %j', async (headers) => {
    const minted = await controller.mint({ sub: 'alice', role: 'ADMIN' }, from('::1', headers));
    expect(minted.token.split('.')).toHaveLength(3);
  });

  // DNS rebinding: a page of attacker.test, its name pointed at 127.0.0.1, calls the route.
  it.each([
    { host: 'attacker.test:3000', origin: 'http://attacker.test:3000' },
    { host: 'attacker.test:3000' },
    { host: 'localhost:3000', origin: 'http://attacker.test:3000' },
    { host: 'localhost.attacker.test:3000' },
    { host: '127.0.0.1.nip.io:3000' },
    { origin: 'http://localhost:3000' },
    { host: 'localhost:3000', origin: 'null' },
  ])('refuses a loopback request addressed by another name: %j', async (headers) => {
    await expect(
      controller.mint({ sub: 'alice', role: 'ADMIN' }, from('127.0.0.1', headers)),
    ).rejects.toBeInstanceOf(ForbiddenError);
  });
});
