// The typed, validated environment. Embedded mode is what you get with no configuration:
// an embedded PostgreSQL and dev token issuer under CUSTODIA_DATA_DIR. A bad value stops
// start-up with one line naming the variable (and never echoing a secret).
import { resolve } from 'node:path';
import { z } from 'zod';

const optional = (schema: z.ZodString) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    schema.optional(),
  );

const milliseconds = (min: number) =>
  z.coerce
    .number({ message: 'must be a number of milliseconds' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`);

const url = (what: string) =>
  z.string().refine((v) => URL.canParse(v), { message: `must be a URL (${what})` });

/** Whether `v`, when it is a URL at all (the check before says when not), has this scheme. */
const schemeIs = (v: string, scheme: RegExp) =>
  !URL.canParse(v) || scheme.test(new URL(v).protocol);

const webUrl = (what: string) =>
  url(what).refine((v) => schemeIs(v, /^https?:$/), {
    message: `must be an http(s) URL (${what})`,
  });

const envSchema = z
  .object({
    PORT: z.coerce
      .number({ message: 'must be a port number' })
      .int('must be a whole number')
      .min(0, 'must be 0–65535')
      .max(65535, 'must be 0–65535')
      .default(3000),
    HOST: z.string().default('0.0.0.0'),
    CUSTODIA_DATA_DIR: z.string().min(1).default('./.data'),
    DATABASE_URL: optional(
      url('postgres://user:password@host:5432/db').refine((v) => schemeIs(v, /^postgres(ql)?:$/), {
        message: 'must be a postgres:// URL',
      }),
    ),
    AUTH_JWKS_URL: optional(url('the identity provider JWKS endpoint')),
    AUTH_ISSUER: optional(z.string()),
    AUTH_AUDIENCE: optional(z.string()),
    /**
     * The console's sign-in with the external provider (OpenID Connect, authorization code with
     * PKCE): its endpoints and the console's public client id. Needs AUTH_JWKS_URL.
     */
    OIDC_AUTHORIZATION_ENDPOINT: optional(webUrl('the provider authorization endpoint')),
    OIDC_TOKEN_ENDPOINT: optional(webUrl('the provider token endpoint')),
    OIDC_CLIENT_ID: optional(z.string().max(255, 'must be at most 255 characters')),
    OIDC_SCOPE: z
      .string()
      .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, {
        message: 'must be scopes separated by single spaces',
      })
      .default('openid'),
    CUSTODIA_KEK: optional(
      z.string().regex(/^([A-Za-z0-9+/]{43}=|[0-9a-fA-F]{64})$/, {
        message: 'must be 32 bytes, base64- or hex-encoded (e.g. `openssl rand -base64 32`)',
      }),
    ),
    /**
     * Which organisations a token's `org` may name: `own` (only this instance's; the default on
     * Fabric, where an instance is one organisation's and its identity provider speaks for no
     * other) or `any` (the default embedded, where one instance may hold several sites).
     */
    ORG_CLAIMS: z.enum(['own', 'any']).optional(),
    ORG_ID: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 letters, digits, dot, dash or underscore')
      .optional(),
    /**
     * Names this instance among its organisation's API instances. Each instance with its own
     * database keeps its own access log, anchored on the ledger as its own chain
     * (`access-log.<INSTANCE_ID>`); unset, the chain is `access-log`, which only one database
     * of an organisation may use. Processes sharing one database share one INSTANCE_ID.
     */
    INSTANCE_ID: optional(
      z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1–64 letters, digits, dot, dash or underscore'),
    ),
    // The Fabric adapter reads and checks its FABRIC_* variables in detail; here, only that
    // the required ones are there, so a missing one stops start-up with one clear line.
    FABRIC_PEER_ENDPOINT: optional(z.string()),
    FABRIC_TLS_CA: optional(z.string()),
    FABRIC_MSP_ID: optional(z.string()),
    FABRIC_CERT: optional(z.string()),
    FABRIC_KEY: optional(z.string()),
    LEDGER: z
      .enum(['embedded', 'fabric'], { message: 'must be embedded or fabric' })
      .default('embedded'),
    /** First retry delay of the record-anchoring outbox; it doubles up to 30 s while failing. */
    ANCHOR_RETRY_MS: z.coerce
      .number({ message: 'must be a number of milliseconds' })
      .int('must be a whole number')
      .min(10, 'must be at least 10')
      .default(1000),
    /**
     * How often the record-anchoring outbox looks for pending records unprompted (0: only at
     * start-up and after a deferral in this process).
     */
    ANCHOR_SWEEP_INTERVAL_MS: z.coerce
      .number({ message: 'must be a number of milliseconds' })
      .int('must be a whole number')
      .min(0, 'must not be negative')
      .default(60_000),
    /** The access log's head is anchored on the ledger after this many events... */
    AUDIT_ANCHOR_EVERY_EVENTS: z.coerce
      .number({ message: 'must be a number of events' })
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .default(100),
    /** ...or after this long, whichever comes first (and on graceful shutdown). */
    AUDIT_ANCHOR_INTERVAL_MS: z.coerce
      .number({ message: 'must be a number of milliseconds' })
      .int('must be a whole number')
      .min(100, 'must be at least 100')
      .default(60_000),
    /** How often the consent projection is compared with the ledger and repaired (0: only at start-up). */
    CONSENT_RECONCILE_INTERVAL_MS: z.coerce
      .number({ message: 'must be a number of milliseconds' })
      .int('must be a whole number')
      .min(0, 'must not be negative')
      .default(300_000),
    /**
     * How long an idle keep-alive connection stays open. Longer than the idle timeout of the
     * load balancers in front (60 s on most), so that the server never closes a connection
     * that a balancer is about to reuse.
     */
    HTTP_KEEP_ALIVE_TIMEOUT_MS: milliseconds(1_000).default(65_000),
    /** How long a client may take to send a request's headers (default: keep-alive + 1 s). */
    HTTP_HEADERS_TIMEOUT_MS: milliseconds(1_000).optional(),
    /** How long a client may take to send a whole request (model updates are the largest). */
    HTTP_REQUEST_TIMEOUT_MS: milliseconds(1_000).default(120_000),
    /**
     * On SIGTERM or SIGINT: how long in-flight requests and shutdown work get before the
     * remaining connections are cut; the database is then stopped in fast mode.
     */
    SHUTDOWN_TIMEOUT_MS: milliseconds(500).default(3_000),
    /** In-process training nodes (one per organisation): on with the embedded ledger. */
    TRAINING_NODES: z
      .enum(['auto', 'on', 'off'], { message: 'must be auto, on or off' })
      .default('auto'),
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    NODE_ENV: z.string().optional(),
  })
  .superRefine((env, ctx) => {
    if (env.LEDGER === 'fabric') {
      for (const name of [
        'FABRIC_PEER_ENDPOINT',
        'FABRIC_TLS_CA',
        'FABRIC_MSP_ID',
        'FABRIC_CERT',
        'FABRIC_KEY',
      ] as const) {
        if (!env[name]) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is required with LEDGER=fabric' });
        }
      }
      if (env.ORG_ID && env.FABRIC_MSP_ID && env.ORG_ID !== env.FABRIC_MSP_ID) {
        ctx.addIssue({
          code: 'custom',
          path: ['ORG_ID'],
          message: 'must equal FABRIC_MSP_ID on Fabric (the ledger knows organisations by MSP id)',
        });
      }
    }
    if (env.DATABASE_URL && !env.CUSTODIA_KEK) {
      ctx.addIssue({
        code: 'custom',
        path: ['CUSTODIA_KEK'],
        message:
          'is required when DATABASE_URL is set (the embedded KEK file is for embedded mode only)',
      });
    }
    // Node drops a request whose headers are late; the keep-alive must lapse first, or a
    // request on a connection about to be reused would be cut instead.
    const headersTimeout = env.HTTP_HEADERS_TIMEOUT_MS ?? env.HTTP_KEEP_ALIVE_TIMEOUT_MS + 1_000;
    if (headersTimeout <= env.HTTP_KEEP_ALIVE_TIMEOUT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['HTTP_HEADERS_TIMEOUT_MS'],
        message: 'must be greater than HTTP_KEEP_ALIVE_TIMEOUT_MS',
      });
    }
    if (env.HTTP_REQUEST_TIMEOUT_MS < headersTimeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['HTTP_REQUEST_TIMEOUT_MS'],
        message: `must be at least the headers timeout (${headersTimeout} ms)`,
      });
    }
    if (env.AUTH_JWKS_URL && (!env.AUTH_ISSUER || !env.AUTH_AUDIENCE)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.AUTH_ISSUER ? 'AUTH_AUDIENCE' : 'AUTH_ISSUER'],
        message: 'is required when AUTH_JWKS_URL is set',
      });
    }
    const oidc = ['OIDC_AUTHORIZATION_ENDPOINT', 'OIDC_TOKEN_ENDPOINT', 'OIDC_CLIENT_ID'] as const;
    if (oidc.some((name) => env[name])) {
      for (const name of oidc) {
        if (!env[name]) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'is required for OpenID Connect sign-in (with the other OIDC_ variables)',
          });
        }
      }
      if (!env.AUTH_JWKS_URL) {
        ctx.addIssue({
          code: 'custom',
          path: ['AUTH_JWKS_URL'],
          message: 'is required with OIDC_ sign-in (the API must trust the provider tokens)',
        });
      }
    }
  });

/** What the console needs to sign in with the external provider (OpenID Connect + PKCE). */
export interface OidcClientConfig {
  authorizationEndpoint: string;
  tokenEndpoint: string;
  clientId: string;
  scope: string;
}

export interface AppConfig {
  port: number;
  host: string;
  dataDir: string;
  /** External PostgreSQL; absent means the embedded one under dataDir. */
  databaseUrl?: string;
  auth:
    | { mode: 'dev'; issuer: string; audience: string }
    | {
        mode: 'jwks';
        jwksUrl: string;
        issuer: string;
        audience: string;
        /** The console's OpenID Connect sign-in, when configured. */
        oidc?: OidcClientConfig;
      };
  /** The KEK as configured (base64/hex); absent in embedded mode means the data-dir file. */
  kek?: string;
  orgId: string;
  /** Which organisations a token's `org` may name (ORG_CLAIMS). */
  orgClaims: 'own' | 'any';
  /** This instance among its organisation's (INSTANCE_ID); names its access log's chain. */
  instanceId?: string;
  ledger: 'embedded' | 'fabric';
  /**
   * The FABRIC_* variables as given (the Fabric adapter checks them itself), so that two
   * instances in one process can each reach their own organisation's peer.
   */
  fabricEnv: Record<string, string>;
  /** Whether this process runs a training node per organisation. */
  trainingNodes: boolean;
  anchorRetryMs: number;
  /** Milliseconds between the anchoring outbox's sweeps for pending records (0: none). */
  anchorSweepMs: number;
  /** The access log's anchoring: every so many events or so many milliseconds. */
  auditAnchor: { everyEvents: number; intervalMs: number };
  /** Milliseconds between reconciliations of the consent projection with the ledger (0: start-up only). */
  consentReconcileMs: number;
  /** Timeouts of the HTTP server's connections, in milliseconds. */
  http: { keepAliveTimeoutMs: number; headersTimeoutMs: number; requestTimeoutMs: number };
  /** What a graceful stop gives in-flight requests and shutdown work, in milliseconds. */
  shutdownTimeoutMs: number;
  logLevel: string;
  production: boolean;
}

export const DEV_ISSUER = 'urn:custodia:dev-issuer';
export const DEV_AUDIENCE = 'custodia';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(`Invalid configuration: ${variable} ${issue.message}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: resolve(e.CUSTODIA_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    auth: e.AUTH_JWKS_URL
      ? {
          mode: 'jwks',
          jwksUrl: e.AUTH_JWKS_URL,
          issuer: e.AUTH_ISSUER!,
          audience: e.AUTH_AUDIENCE!,
          ...(e.OIDC_CLIENT_ID
            ? {
                oidc: {
                  authorizationEndpoint: e.OIDC_AUTHORIZATION_ENDPOINT!,
                  tokenEndpoint: e.OIDC_TOKEN_ENDPOINT!,
                  clientId: e.OIDC_CLIENT_ID,
                  scope: e.OIDC_SCOPE,
                },
              }
            : {}),
        }
      : {
          mode: 'dev',
          issuer: e.AUTH_ISSUER ?? DEV_ISSUER,
          audience: e.AUTH_AUDIENCE ?? DEV_AUDIENCE,
        },
    kek: e.CUSTODIA_KEK,
    // On Fabric the ledger names an organisation by its MSP id; embedded, by ORG_ID.
    orgId: e.ORG_ID ?? (e.LEDGER === 'fabric' ? e.FABRIC_MSP_ID! : 'org1'),
    orgClaims: e.ORG_CLAIMS ?? (e.LEDGER === 'fabric' ? 'own' : 'any'),
    instanceId: e.INSTANCE_ID,
    ledger: e.LEDGER,
    fabricEnv: Object.fromEntries(
      Object.entries(env).filter(
        (kv): kv is [string, string] => kv[0].startsWith('FABRIC_') && kv[1] !== undefined,
      ),
    ),
    trainingNodes:
      e.TRAINING_NODES === 'on' || (e.TRAINING_NODES === 'auto' && e.LEDGER === 'embedded'),
    anchorRetryMs: e.ANCHOR_RETRY_MS,
    anchorSweepMs: e.ANCHOR_SWEEP_INTERVAL_MS,
    auditAnchor: {
      everyEvents: e.AUDIT_ANCHOR_EVERY_EVENTS,
      intervalMs: e.AUDIT_ANCHOR_INTERVAL_MS,
    },
    consentReconcileMs: e.CONSENT_RECONCILE_INTERVAL_MS,
    http: {
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS ?? e.HTTP_KEEP_ALIVE_TIMEOUT_MS + 1_000,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    production: e.NODE_ENV === 'production',
  };
}
