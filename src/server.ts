// Starts the API: the database (embedded unless DATABASE_URL is set, migrations applied),
// then Nest on PORT. An embedded database is supervised: restarted if it dies. `stop()` is
// graceful and bounded: requests drain, Nest closes, the database stops last.
import {
  ConsoleLogger,
  INestApplication,
  Logger as NestLogger,
  LoggerService,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { raw } from 'express';
import { Logger } from 'nestjs-pino';
import type { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Client } from 'pg';
import type { DestinationStream } from 'pino';
import { AppModule, GRAPHQL_DOCUMENT_LIMITS } from './app.module';
import { Actor, TokenVerifier } from './auth';
import { sendError } from './common/error-response';
import { ForbiddenError } from './common/errors';
import { waitForDatabase } from './database/wait-for-database';
import { Coordinator } from './federated/coordinator/coordinator.service';
import {
  importTooLarge,
  jsonBodies,
  MAX_IMPORT_BODY_BYTES,
  tooLarge,
  verifiedCaller,
} from './common/json-bodies';
import { AppConfig } from './config';
import { consoleAssets, ConsoleSignIn } from './console';
import { embeddedPostgres } from './database/embedded-loader';
import type { EmbeddedPostgresServer } from './database/embedded-postgres';
import { HttpDrain, withinDeadline } from './lifecycle';

export { MAX_BODY } from './common/json-bodies';
/** The largest model update body: a 16M-parameter float32 model. */
const MAX_MODEL_BODY_BYTES = 64 * 1024 * 1024;
/** Request headers, together (a remote node's manifest is one of them). */
export const MAX_HEADER_BYTES = 2 * 1024 * 1024;

/** The share of SHUTDOWN_TIMEOUT_MS that requests in flight get; Nest's shutdown work has the rest. */
const DRAIN_SHARE = 0.6;

export interface RunningServer {
  app: INestApplication;
  url: string;
  port: number;
  embeddedDatabase: boolean;
  /**
   * Stops gracefully within SHUTDOWN_TIMEOUT_MS (plus the database's fast shutdown): no new
   * connections, requests in flight finish, idle connections close, Nest closes, then the
   * embedded database stops. Work still running at the deadline is abandoned, and logged.
   */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Where log lines go: stdout unless given (a test reads them from its own). */
  logTo?: DestinationStream;
  /** One-line notices from start-up (e.g. an orphaned embedded database that was stopped). */
  onNotice?: (line: string) => void;
}

export async function startServer(
  config: AppConfig,
  options: StartOptions = {},
): Promise<RunningServer> {
  let embedded: EmbeddedPostgresServer | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const { EmbeddedPostgresServer } = embeddedPostgres();
    const server = new EmbeddedPostgresServer({
      dir: config.dataDir,
      onNotice: options.onNotice,
    });
    embedded = server;
    await server.start();
    databaseUrl = await ensureDatabase(server, 'custodia');
  } else {
    await waitForDatabase(databaseUrl, { onNotice: options.onNotice });
  }
  try {
    const app = await NestFactory.create(
      AppModule.forRoot({ config, databaseUrl, logTo: options.logTo }),
      {
        // Until the structured logger is reachable (modules being created): warnings and
        // errors only, Nest's start-up chatter (modules, routes) stays out of the log.
        // Colours only on a terminal: a log file or a supervisor's journal gets plain text.
        logger: new ConsoleLogger({
          logLevels: ['fatal', 'error', 'warn'],
          colors: process.stderr.isTTY === true,
        }),
        bodyParser: false,
        abortOnError: false,
      },
    );
    // From here on, warnings and errors (a start-up repair, say) go to the structured log as
    // JSON lines like every later one; Nest's start-up chatter still does not.
    app.useLogger(new StartupLogger(app.get(Logger)));
    const express = app.getHttpAdapter().getInstance() as {
      disable(name: string): void;
      set(name: string, value: unknown): void;
    };
    // Nothing says which framework answers, and no ETag hashes a body that may hold PHI.
    express.disable('x-powered-by');
    express.set('etag', false);
    app.use((req: Request, res: Response, next: NextFunction) => {
      res.setHeader('X-Content-Type-Options', 'nosniff');
      // GraphQL answers carry health data: no browser or proxy keeps them.
      if (req.url.startsWith('/graphql')) res.setHeader('Cache-Control', 'no-store');
      // GraphQL is served at /graphql only; Express's mount would answer below it too.
      if (/^\/graphql\/[^?]/.test(req.url)) {
        sendError(res, 404, 'Nothing here: GraphQL is served at /graphql.', 'NOT_FOUND');
        return;
      }
      next();
    });
    const verifier = app.get(TokenVerifier);
    app.use(
      jsonBodies({
        verify: (token) => verifier.verify(token),
        maxTokens: GRAPHQL_DOCUMENT_LIMITS.maxTokens,
      }),
    );
    // Model updates are binary (float32 little-endian); a 16M-parameter model fits. Read only
    // for a caller whose token verifies as a NODE's: anyone else's body stays unread, and the
    // guard answers 401 or 403 as on any route.
    const updateBody = raw({ type: 'application/octet-stream', limit: MAX_MODEL_BODY_BYTES });
    const coordinator = app.get(Coordinator);
    app.use('/fl', (req: Request, res: Response, next: NextFunction) => {
      if (req.method !== 'POST') return next();
      void verifiedCaller(req, (token) => verifier.verify(token))
        .then(async (actor) => {
          if (!actor?.roles.includes('NODE')) return next();
          // A body of up to 64 MB is read only for a registered training node's token.
          await coordinator.requireNodeOrStaff(actor);
          // The guard reuses the verified caller instead of verifying again.
          (req as { actor?: Actor }).actor = actor;
          updateBody(req, res, next);
        })
        .catch((e: unknown) => {
          if (e instanceof ForbiddenError) return sendError(res, 403, e.message, 'FORBIDDEN');
          next(e);
        });
    });
    app.use(bodyErrors);
    app.use('/console', consoleAssets({ signIn: consoleSignIn(config) }));
    // Browsers ask for it on every console load; a 404 showed as an error in their console.
    app.use('/favicon.ico', (_req: Request, res: Response) => {
      res.status(204).setHeader('Cache-Control', 'public, max-age=86400').end();
    });
    const http = app.getHttpServer() as Server;
    // A remote node's signed manifest travels in a header and lists its round's contributors
    // (52 bytes each): Node's 16 kB default refused a site of 300 patients. 2 MiB holds about
    // 40,000; past it the answer is a JSON 431, not Node's bare one.
    (http as Server & { maxHeaderSize: number }).maxHeaderSize = MAX_HEADER_BYTES;
    http.on('clientError', clientError);
    http.keepAliveTimeout = config.http.keepAliveTimeoutMs;
    http.headersTimeout = config.http.headersTimeoutMs;
    http.requestTimeout = config.http.requestTimeoutMs;
    const drain = new HttpDrain(http);
    await app.listen(config.port, config.host);
    app.useLogger(app.get(Logger));
    if (embedded) superviseDatabase(embedded);
    const logger = new NestLogger('Shutdown');
    const { port } = http.address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
    let stopped: Promise<void> | undefined;
    const stop = async () => {
      const started = Date.now();
      const deadline = started + config.shutdownTimeoutMs;
      try {
        const { cut } = await drain.drain(started + config.shutdownTimeoutMs * DRAIN_SHARE);
        if (cut) {
          logger.warn({ cut }, 'requests still unfinished at the shutdown deadline were cut');
        }
        if (!(await withinDeadline(app.close(), deadline))) {
          logger.warn('shutdown work unfinished at the deadline was abandoned');
        }
      } finally {
        await embedded?.stop();
      }
    };
    return {
      app,
      port,
      url: `http://${host}:${port}`,
      embeddedDatabase: !!embedded,
      stop: () => (stopped ??= stop()),
    };
  } catch (e) {
    await embedded?.stop();
    throw e;
  }
}

/**
 * The structured logger while the application starts: warnings and errors pass, Nest's
 * start-up chatter (each module and route it sets up, at `log`) does not.
 */
class StartupLogger implements LoggerService {
  constructor(private readonly to: Logger) {}
  log(): void {}
  debug(): void {}
  verbose(): void {}
  warn(message: unknown, ...rest: unknown[]): void {
    this.to.warn(message, ...rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.to.error(message, ...rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.to.fatal(message, ...rest);
  }
}

/** How the console signs in: the dev issuer's form, or the external provider's OIDC client. */
function consoleSignIn(config: AppConfig): ConsoleSignIn {
  if (config.auth.mode === 'dev') return config.production ? { mode: 'none' } : { mode: 'dev' };
  return config.auth.oidc ? { mode: 'oidc', ...config.auth.oidc } : { mode: 'none' };
}

/** Logs the embedded database's supervision: an unexpected exit, each retry, the recovery. */
function superviseDatabase(database: EmbeddedPostgresServer): void {
  const logger = new NestLogger('EmbeddedPostgres');
  database.events.on('down', ({ pid, code, signal }) =>
    logger.error(
      { postgresPid: pid, code, signal },
      'embedded PostgreSQL exited unexpectedly; restarting it',
    ),
  );
  database.events.on('retry', ({ attempt, retryInMs, error }) =>
    logger.warn({ attempt, retryInMs, error }, 'embedded PostgreSQL did not restart; retrying'),
  );
  database.events.on('up', ({ pid, attempts, downMs }) =>
    logger.log({ postgresPid: pid, attempts, downMs }, 'embedded PostgreSQL restarted'),
  );
}

async function ensureDatabase(server: EmbeddedPostgresServer, name: string): Promise<string> {
  const client = new Client({ connectionString: server.url });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return server.urlFor(name);
}

/**
 * Client errors (malformed requests), as Node answers them when nothing listens, except that
 * headers past MAX_HEADER_BYTES are answered 431 in the API's error shape, with the contract's
 * code (Node's own 431 has no body).
 */
function clientError(err: Error & { code?: string }, socket: Duplex & { bytesWritten?: number }) {
  if (!socket.writable || socket.bytesWritten !== 0) {
    socket.destroy(err);
    return;
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    const body = JSON.stringify({
      errors: [
        {
          message: `Request headers exceed ${MAX_HEADER_BYTES / 2 ** 20} MiB (a node's manifest lists at most about 40,000 contributors).`,
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ],
    });
    socket.end(
      'HTTP/1.1 431 Request Header Fields Too Large\r\n' +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
  } else {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  }
}

/** The encodings body-parser inflates; any other is refused (415) before a byte is read. */
const DECODED_ENCODINGS = ['gzip', 'deflate', 'br', 'zstd'];

/** Body-parser failures answered in GraphQL's error shape, with the contract's code. */
function bodyErrors(err: unknown, req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number; limit?: number };
  if (e?.type === 'entity.too.large') {
    // The parser that refused says which limit applied: a model update's is not the JSON one.
    if (e.limit === MAX_MODEL_BODY_BYTES) {
      sendError(
        res,
        413,
        `Request body exceeds ${MAX_MODEL_BODY_BYTES / 2 ** 20}MB, the largest model update accepted.`,
        'BAD_USER_INPUT',
      );
    } else if (e.limit === MAX_IMPORT_BODY_BYTES) {
      importTooLarge(res);
    } else {
      tooLarge(res);
    }
    return;
  }
  // A decompression failure (zlib's Z_DATA_ERROR, say) is a 400 with no body-parser type, which
  // would otherwise read as a JSON syntax error.
  const encoding = req.headers['content-encoding']?.toLowerCase();
  if (e?.status === 400 && e.type === undefined && encoding && encoding !== 'identity') {
    const message = DECODED_ENCODINGS.includes(encoding)
      ? `Request body could not be decoded: Content-Encoding says ${encoding}, but the body is not valid ${encoding} data.`
      : 'Request body could not be decoded according to its Content-Encoding.';
    sendError(res, 400, message, 'BAD_USER_INPUT');
    return;
  }
  if (e?.status === 400 || e?.type === 'entity.parse.failed') {
    sendError(res, 400, 'Request body is not valid JSON.', 'BAD_USER_INPUT');
    return;
  }
  next(err);
}
