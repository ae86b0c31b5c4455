// A graceful stop of the HTTP server: no new connections, requests already in flight finish
// (within a deadline) on connections that then close, idle keep-alive connections close at
// once (so a long keep-alive timeout never delays a stop), and whatever is left at the
// deadline is cut.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { withinDeadline } from './deadline';

export interface DrainOutcome {
  /** Requests still unfinished at the deadline, whose connections were cut. */
  cut: number;
}

export class HttpDrain {
  private readonly inFlight = new Set<ServerResponse>();
  private draining = false;

  constructor(private readonly server: Server) {
    // First in line, so that every request is counted before anything handles it.
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
      this.inFlight.add(res);
      if (this.draining) closeAfter(res);
      res.once('close', () => {
        this.inFlight.delete(res);
        // Its connection, if still open, is idle now: nothing more will come on it.
        if (this.draining) this.server.closeIdleConnections();
      });
    });
  }

  /** Requests being answered right now. */
  get active(): number {
    return this.inFlight.size;
  }

  /** Stops accepting and waits for the requests in flight until `deadline` (epoch ms). */
  async drain(deadline: number): Promise<DrainOutcome> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const res of this.inFlight) closeAfter(res);
    this.server.closeIdleConnections();
    if (await withinDeadline(closed, deadline)) return { cut: 0 };
    const cut = this.inFlight.size;
    this.server.closeAllConnections();
    await closed;
    return { cut };
  }
}

/** The connection closes once this response is sent, instead of waiting for another request. */
function closeAfter(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}
