// Starts the API: the database (embedded unless DATABASE_URL is set, migrations applied),
// then Nest on PORT. `stop()` closes both, the database last.
import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { json, raw } from 'express';
import { Logger } from 'nestjs-pino';
import { AddressInfo } from 'node:net';
import { Client } from 'pg';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module';
import { AppConfig } from './config';
import { embeddedPostgres } from './database/embedded-loader';
import type { EmbeddedPostgresServer } from './database/embedded-postgres';

/** The largest request body accepted (a FHIR resource with room to spare). */
export const MAX_BODY = '1mb';
export const MAX_MODEL_BODY = '64mb';

export interface RunningServer {
  app: INestApplication;
  url: string;
  port: number;
  embeddedDatabase: boolean;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Where log lines go: stdout unless given (a test reads them from its own). */
  logTo?: DestinationStream;
}

export async function startServer(
  config: AppConfig,
  { logTo }: ServerOptions = {},
): Promise<RunningServer> {
  let embedded: EmbeddedPostgresServer | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const { EmbeddedPostgresServer } = embeddedPostgres();
    const server = new EmbeddedPostgresServer({ dir: config.dataDir });
    embedded = server;
    await server.start();
    databaseUrl = await ensureDatabase(server, 'custodia');
  }
  try {
    const app = await NestFactory.create(AppModule.forRoot({ config, databaseUrl, logTo }), {
      // Nest's own start-up chatter (modules, routes) stays out of the log; warnings and
      // errors do not. The structured logger takes over once the server listens.
      logger: ['fatal', 'error', 'warn'],
      bodyParser: false,
      abortOnError: false,
    });
    app.use(json({ limit: MAX_BODY }));
    // Model updates are binary (float32 little-endian); a 16M-parameter model fits.
    app.use('/fl', raw({ type: 'application/octet-stream', limit: MAX_MODEL_BODY }));
    app.use(bodyErrors);
    await app.listen(config.port, config.host);
    app.useLogger(app.get(Logger));
    const { port } = app.getHttpServer().address() as AddressInfo;
    const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
    return {
      app,
      port,
      url: `http://${host}:${port}`,
      embeddedDatabase: !!embedded,
      stop: async () => {
        try {
          await app.close();
        } finally {
          await embedded?.stop();
        }
      },
    };
  } catch (e) {
    await embedded?.stop();
    throw e;
  }
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

/** Body-parser failures answered in GraphQL's error shape, with the contract's code. */
function bodyErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.too.large') {
    res.status(413).json({
      errors: [
        {
          message: `Request body exceeds ${MAX_BODY.toUpperCase()}; send smaller resources, one per request.`,
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ],
    });
    return;
  }
  if (e?.status === 400 || e?.type === 'entity.parse.failed') {
    res.status(400).json({
      errors: [
        { message: 'Request body is not valid JSON.', extensions: { code: 'BAD_USER_INPUT' } },
      ],
    });
    return;
  }
  next(err);
}
