import express from 'express';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleAssets } from './console-assets';

describe('consoleAssets', () => {
  let dir: string;
  let server: ReturnType<ReturnType<typeof express>['listen']>;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'console-assets-'));
    const app = express();
    app.use('/console', consoleAssets({ dir }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/console`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('says how to build the console while it is not built, then serves it once it is', async () => {
    const missing = await fetch(`${base}/`);
    expect(missing.status).toBe(503);
    await expect(missing.text()).resolves.toContain('npm run build');

    await writeFile(join(dir, 'index.html'), '<!doctype html><title>Custodia</title>');
    const built = await fetch(`${base}/any/page`);
    expect(built.status).toBe(200);
    expect(built.headers.get('content-security-policy')).toContain("script-src 'self'");
    await expect(built.text()).resolves.toContain('<title>Custodia</title>');
  });

  it('answers a console it cannot read with a server error, not "not built"', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'console-assets-'));
    await mkdir(join(broken, 'index.html'));
    const app = express();
    app.use('/console', consoleAssets({ dir: broken }));
    const other = app.listen(0, '127.0.0.1');
    try {
      await new Promise((r) => other.once('listening', r));
      const res = await fetch(`http://127.0.0.1:${(other.address() as AddressInfo).port}/console/`);
      expect(res.status).toBe(500);
      await expect(res.text()).resolves.not.toContain('npm run build');
    } finally {
      await new Promise((r) => other.close(r));
      await rm(broken, { recursive: true, force: true });
    }
  });
});
