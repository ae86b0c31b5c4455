// One autocannon run of a fixed POST request. Latency percentiles come from every response's
// own timing (autocannon's histogram rounds to whole milliseconds).
import autocannon from 'autocannon';

export interface LoadSettings {
  connections: number;
  seconds: number;
}

export interface LoadResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
}

export interface GraphQLRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** Bodies sent in turn instead of `body` (e.g. one page per patient of many). */
  bodies?: string[];
}

export async function runLoad(req: GraphQLRequest, settings: LoadSettings): Promise<LoadResult> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: req.url,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...req.headers },
        body: req.body,
        ...(req.bodies?.length ? { requests: [{ setupRequest: cycle(req.bodies) }] } : {}),
        connections: settings.connections,
        pipelining: 1,
        duration: settings.seconds,
      },
      (err, result) => (err ? reject(err as Error) : resolve(result)),
    );
    instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  });
  latencies.sort((a, b) => a - b);
  return {
    reqPerSec: round(result.requests.total / result.duration, 0),
    p50Ms: round(percentile(latencies, 0.5), 2),
    p99Ms: round(percentile(latencies, 0.99), 2),
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: round(result.duration, 2),
  };
}

/** A request set-up that sends `bodies` one after the other, round and round. */
function cycle(bodies: string[]) {
  let next = 0;
  return (request: autocannon.Request): autocannon.Request => ({
    ...request,
    body: bodies[next++ % bodies.length],
  });
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
