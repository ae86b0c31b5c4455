// Serves the web console's built assets (console/dist, built by `npm run build`) at /console,
// with a strict Content-Security-Policy: scripts and styles only from this origin, no inline
// code, API calls only to this origin (and the identity provider's token endpoint when the
// console signs in through OpenID Connect), never framed. Plain Express, outside Nest's
// routing, so that /graphql, /health and /fl are untouched. /console/config.json tells the
// console how to sign in.
import { Logger } from '@nestjs/common';
import { Router, static as serveStatic } from 'express';
import type { Request, Response, NextFunction } from 'express';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../common/paths';
import type { OidcClientConfig } from '../config';

/** Where `vite build` writes the console. */
export const CONSOLE_DIST = join(PROJECT_ROOT, 'console', 'dist');

/** The policy for a console that may call this origin and, besides, `connect` origins. */
export function consoleCsp(connect: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    ["connect-src 'self'", ...connect].join(' '),
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The policy of the development sign-in: API calls to this origin only. */
export const CONSOLE_CSP = consoleCsp();

/** How the console signs in: what /console/config.json answers. */
export type ConsoleSignIn =
  | { mode: 'dev' }
  | ({ mode: 'oidc' } & OidcClientConfig)
  /** An external issuer but no OIDC client configured: the console cannot sign anyone in. */
  | { mode: 'none' };

function securityHeaders(csp: string) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    next();
  };
}

export interface ConsoleOptions {
  dir?: string;
  signIn?: ConsoleSignIn;
}

/** The /console router: the built single-page app, or a 503 saying how to build it. */
export function consoleAssets({
  dir = CONSOLE_DIST,
  signIn = { mode: 'dev' },
}: ConsoleOptions = {}): Router {
  const router = Router();
  // The code is exchanged for tokens by the page itself: its origin must be reachable.
  const csp =
    signIn.mode === 'oidc' ? consoleCsp([new URL(signIn.tokenEndpoint).origin]) : CONSOLE_CSP;
  router.use(securityHeaders(csp));
  router.get('/config.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(signIn);
  });
  const index = join(dir, 'index.html');
  router.use(
    serveStatic(dir, {
      index: false,
      redirect: false,
      // Hashed file names: a built asset never changes under its name. Not so a page (the
      // app's index.html, asked for by name): kept a year, it would ask for assets a newer
      // build no longer has, and the console would stay blank.
      setHeaders: (res, path) =>
        res.setHeader(
          'Cache-Control',
          path.endsWith('.html') ? 'no-store' : 'public, max-age=31536000, immutable',
        ),
    }),
  );
  // A missing asset is a 404, never the app's page under a script's name.
  router.use('/assets', (_req, res) => {
    res.status(404).type('text/plain').send('No such console asset.\n');
  });
  const logger = new Logger('ConsoleAssets');
  // The app keeps its state in memory, never in the URL, so every other path is the app.
  router.get(/.*/, (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    // No stat of its own per request: a console not built yet shows as sendFile's failure.
    res.sendFile(index, (e?: NodeJS.ErrnoException) => {
      if (!e || res.headersSent) return;
      // Only a missing page means "not built"; one that cannot be read is the server's fault.
      const [status, text] =
        e.code === 'ENOENT'
          ? [503, 'The console is not built: run `npm run build` (or `npm run build:console`).']
          : [500, 'The console could not be read; see the server log.'];
      if (status === 500) logger.error({ errorType: e.code ?? e.name }, 'console page unreadable');
      res.status(status).type('text/plain').send(`${text}\n`);
    });
  });
  return router;
}
