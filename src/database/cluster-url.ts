// How to reach an embedded cluster: over its own Unix socket, in its data directory, where the
// path fits (about a quarter less CPU per query than loopback TCP, on both sides, measured
// here), else over loopback TCP, which the server always listens on too.
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { processAlive, readPidFile } from './postmaster';

/**
 * The longest path a Unix socket may have on Linux (sun_path holds 108 bytes with its NUL).
 * A cluster whose socket path would be longer is reached over loopback TCP alone.
 */
const MAX_SOCKET_PATH = 107;

/** The Unix socket of a cluster in `pgData` on `port`, or undefined where it has none. */
export function socketPathOf(pgData: string, port: number): string | undefined {
  const path = join(resolve(pgData), `.s.PGSQL.${port}`);
  // unix_socket_directories is a comma-separated list, where a comma, a quote or a space
  // would need quoting: such a directory is left to TCP rather than risked.
  if (/[\s,"']/.test(path)) return undefined;
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
}

/** The directory of that socket (what unix_socket_directories and a URL name), if any. */
export function socketDirOf(pgData: string, port: number): string | undefined {
  const socket = socketPathOf(pgData, port);
  return socket && dirname(socket);
}

/**
 * A URL of the cluster: over the socket in `socketDir` if given, else TCP. The socket is named
 * libpq's way, by a `host` parameter, which node-postgres (and psql) take over the URL's host;
 * the URL keeps a host of its own so that it stays a valid URL for everything else.
 */
export function clusterUrl(
  password: string,
  port: number,
  database: string,
  socketDir?: string,
): string {
  const auth = `postgres:${encodeURIComponent(password)}`;
  const socket = socketDir ? `?host=${encodeURIComponent(socketDir)}` : '';
  return `postgres://${auth}@${socketDir ? 'localhost' : '127.0.0.1'}:${port}/${database}${socket}`;
}

/**
 * The URL of a cluster in `dir` that another process is running right now, if any (for
 * commands such as verify-ledger and seed that run beside the server, without loading the
 * embedded server's package): over its socket when this process may use it (a server started
 * by root runs as postgres, whose data dir another user cannot enter), else over loopback TCP.
 */
export async function runningClusterUrl(
  dir: string,
  database: string,
): Promise<string | undefined> {
  const pidFile = await readPidFile(join(dir, 'pg'));
  if (!pidFile || !processAlive(pidFile.pid) || !Number.isInteger(pidFile.port)) {
    return undefined;
  }
  const password = (await readFile(join(dir, 'pg-password'), 'utf8')).trim();
  const socket = socketPathOf(join(dir, 'pg'), pidFile.port);
  const usable =
    socket !== undefined &&
    (await access(socket, constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    ));
  return clusterUrl(password, pidFile.port, database, usable ? dirname(socket) : undefined);
}
