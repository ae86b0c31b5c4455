// Start-up against an external PostgreSQL: one not accepting connections yet is waited for,
// one line per try; a wrong password or a missing database stops at once, naming DATABASE_URL,
// without retries, stack traces or the password.
import { freePort } from '../src/common/free-port';
import { waitForDatabase } from '../src/database/wait-for-database';

const adminUrl = () => new URL(process.env.CUSTODIA_TEST_PG_URL!);

describe('waiting for the database at start-up', () => {
  it('stops at once on a wrong password, naming DATABASE_URL and not the password', async () => {
    const url = adminUrl();
    url.password = 'not-the-password-7f3a';
    const notices: string[] = [];
    const failure = await waitForDatabase(url.href, { onNotice: (l) => notices.push(l) }).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(failure).toMatch(
      /^cannot connect to DATABASE_URL \([^)]+\): password authentication failed/,
    );
    expect(failure).not.toContain('not-the-password-7f3a');
    expect(notices).toEqual([]);
  });

  it('stops at once on a database that does not exist', async () => {
    const url = adminUrl();
    url.pathname = '/no_such_database';
    await expect(waitForDatabase(url.href)).rejects.toThrow(
      /cannot connect to DATABASE_URL \(.*\/no_such_database\): database "no_such_database" does not exist/,
    );
  });

  it('waits for a server that refuses connections, a line per try, then gives up', async () => {
    const url = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
    const notices: string[] = [];
    await expect(
      waitForDatabase(url, { attempts: 3, delayMs: 10, onNotice: (l) => notices.push(l) }),
    ).rejects.toThrow(/cannot connect to DATABASE_URL .*ECONNREFUSED/);
    expect(notices).toHaveLength(2);
    expect(notices[0]).toMatch(/is not accepting connections .*trying again in 0\.01 s \(1 of 2\)/);
  });

  it('answers once the database does', async () => {
    await expect(waitForDatabase(adminUrl().href)).resolves.toBeUndefined();
  });
});
