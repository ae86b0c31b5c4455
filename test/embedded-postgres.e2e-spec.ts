// The test run's embedded cluster (test/helpers/global-setup.ts) is reached as embedded mode
// reaches its own: over the cluster's Unix socket, with the password still required.
import { dirname } from 'node:path';
import { Client } from 'pg';
import { runningClusterUrl } from '../src/database/cluster-url';

async function clientAddress(url: string): Promise<string | null> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT inet_client_addr()::text AS addr');
    return rows[0].addr as string | null;
  } finally {
    await client.end();
  }
}

describe('the embedded PostgreSQL', () => {
  const url = new URL(process.env.CUSTODIA_TEST_PG_URL!);

  it('is reached over its Unix socket in the data dir: no client address, no TCP', async () => {
    expect(url.searchParams.get('host')).toMatch(/\/pg$/);
    expect(await clientAddress(url.href)).toBeNull();
  });

  it('still wants the password over the socket', async () => {
    const wrong = new URL(url.href);
    wrong.password = 'not-the-password';
    await expect(clientAddress(wrong.href)).rejects.toMatchObject({ code: '28P01' });
  });

  it('answers loopback TCP too, for tools that cannot use a socket', async () => {
    const tcp = new URL(url.href);
    tcp.search = '';
    tcp.hostname = '127.0.0.1';
    expect(await clientAddress(tcp.href)).toBe('127.0.0.1/32');
  });

  it('is found over the same socket by a command run beside it', async () => {
    const dir = dirname(url.searchParams.get('host')!);
    const beside = new URL((await runningClusterUrl(dir, 'postgres'))!);
    expect(beside.href).toBe(url.href);
    expect(beside.searchParams.get('host')).toBe(url.searchParams.get('host'));
    expect(await clientAddress(beside.href)).toBeNull();
  });
});
