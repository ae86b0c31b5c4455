import { parse } from 'pg-connection-string';
import { clusterUrl, socketPathOf } from './cluster-url';

describe('cluster URLs', () => {
  it('puts the socket in the data dir while its path fits, and none where it would not', () => {
    expect(socketPathOf('/tmp/custodia/pg', 5433)).toBe('/tmp/custodia/pg/.s.PGSQL.5433');
    const long = '/tmp/' + 'd'.repeat(90) + '/pg';
    expect(socketPathOf(long, 5433)).toBeUndefined();
    expect(socketPathOf('/tmp/a b/pg', 5433)).toBeUndefined();
    expect(socketPathOf('/tmp/a,b/pg', 5433)).toBeUndefined();
  });

  it('gives node-postgres the socket, the port, the database and the password as they are, in a valid URL', () => {
    expect(() => new URL(clusterUrl('p@ss', 5433, 'custodia', '/tmp/x/pg'))).not.toThrow();
    const password = 'p@ss:w/rd?&=%';
    expect(parse(clusterUrl(password, 5433, 'custodia', '/tmp/x y/pg'))).toMatchObject({
      host: '/tmp/x y/pg',
      port: '5433',
      user: 'postgres',
      password,
      database: 'custodia',
    });
    expect(parse(clusterUrl(password, 5433, 'custodia'))).toMatchObject({
      host: '127.0.0.1',
      port: '5433',
      password,
      database: 'custodia',
    });
  });
});
