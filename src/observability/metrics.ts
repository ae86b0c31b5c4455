// Prometheus metrics: request count and latency by route, GraphQL operations by root field.
import { Injectable, NestMiddleware } from '@nestjs/common';
import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

@Injectable()
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'custodia_http_requests_total',
    help: 'HTTP requests by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'custodia_http_request_duration_seconds',
    help: 'HTTP request latency by method and route.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly graphqlOperations = new Counter({
    name: 'custodia_graphql_operations_total',
    help: 'GraphQL operations by root field and outcome.',
    labelNames: ['field', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly integrityFailures = new Counter({
    name: 'custodia_integrity_failures_total',
    help: 'Rows that failed an integrity check (forged, altered or unreadable), by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Counts each executed operation by its root fields (bounded by the schema). */
  graphqlPlugin(): ApolloServerPlugin {
    const counter = this.graphqlOperations;
    return {
      async requestDidStart() {
        return {
          async willSendResponse({ operation, errors }) {
            if (!operation) return;
            const outcome = errors?.length ? 'error' : 'ok';
            for (const s of operation.selectionSet.selections) {
              if (s.kind === 'Field' && !s.name.value.startsWith('__')) {
                counter.inc({ field: s.name.value, outcome });
              }
            }
          },
        };
      },
    };
  }
}

const KNOWN_ROUTES = new Set(['/graphql', '/health', '/metrics', '/.well-known/jwks.json']);

@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: Metrics) {}

  use(req: Request, res: Response, next: NextFunction): void {
    const end = this.metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const path = req.originalUrl.split('?')[0];
      const route = KNOWN_ROUTES.has(path) ? path : path.startsWith('/fl/') ? '/fl' : 'other';
      end({ method: req.method, route });
      this.metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  }
}
