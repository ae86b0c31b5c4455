// A free TCP port on the loopback interface, for a server to listen on a moment later.
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';

/** Where freePort looks first: above most services' well-known ports, below the ephemeral range. */
const LOW_PORTS = { from: 20_000, to: 32_000 };

/**
 * A port nothing listens on now, for a server to take a moment later. Chosen below the
 * kernel's range for outgoing connections' local ports (32768-60999 by default on Linux):
 * a port from there (what listen(0) hands out) can be taken meanwhile by any connection this
 * machine opens, and a parallel test run opens many. Falls back to listen(0).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = LOW_PORTS.from + randomInt(LOW_PORTS.to - LOW_PORTS.from);
    if (await canListen(port)) return port;
  }
  return listenAny();
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function listenAny(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
