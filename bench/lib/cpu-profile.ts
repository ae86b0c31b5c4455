// Summarises a V8 CPU profile (.cpuprofile) of a server under load: where the main thread's
// busy time went, by layer of the stack (each sample charged to the innermost frame that
// belongs to a known layer), by package or source module, and by function. Idle time is
// left out; with the number of requests served, times are also given per request.
//   node dist/bench/lib/cpu-profile.js <file.cpuprofile> [requests]
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const pkg = (...names: string[]) =>
  new RegExp(`/node_modules/(${names.join('|').replace(/[.]/g, '\\.')})/`);

/** Layers of the request path, first match wins for the innermost matching frame. */
const LAYERS: [string, (f: CallFrame) => boolean][] = [
  ['JWT verification (jose, WebCrypto ECDSA)', (f) => /\/jose\/|\/src\/auth\//.test(f.url)],
  [
    'content hash (JCS canonicalisation, SHA-256)',
    (f) =>
      /\/src\/records\/crypto\/content-hash\.js$/.test(f.url) || pkg('canonicalize').test(f.url),
  ],
  [
    'record decryption (AES-GCM, payload JSON.parse)',
    (f) => /\/src\/records\/crypto\//.test(f.url),
  ],
  [
    'pg driver (socket writes, row and type parsing)',
    (f) => pkg('pg', 'pg-protocol', 'pg-types', 'pg-pool', 'postgres-[a-z]+').test(f.url),
  ],
  ['TypeORM (query building, hydration)', (f) => pkg('typeorm').test(f.url)],
  ['ledger', (f) => /\/src\/ledger\/|\/chaincode\//.test(f.url)],
  ['Custodia services', (f) => /\/dist\/src\//.test(f.url)],
  [
    'response JSON.stringify (Apollo)',
    (f) => f.functionName === 'prettyJSONStringify' && pkg('@apollo/server').test(f.url),
  ],
  [
    'logging (pino-http)',
    (f) => pkg('pino', 'pino-http', 'nestjs-pino', '@pinojs/redact').test(f.url),
  ],
  ['metrics (prom-client)', (f) => pkg('prom-client').test(f.url)],
  ['GraphQL armor', (f) => pkg('@escape.tech/graphql-armor[a-z-]*').test(f.url)],
  ['GraphQL execution (graphql-js, scalars)', (f) => pkg('graphql', 'graphql-scalars').test(f.url)],
  [
    'Nest (guards, params, resolvers)',
    (f) => pkg('@nestjs/core', '@nestjs/common', '@nestjs/graphql').test(f.url),
  ],
  [
    'Apollo Server (pipeline, plugins)',
    (f) => pkg('@apollo/server', '@as-integrations/express5').test(f.url),
  ],
  [
    'express (router, body parsing, response)',
    (f) =>
      pkg(
        'express',
        'router',
        'body-parser',
        'raw-body',
        'content-type',
        'type-is',
        'iconv-lite',
        'on-finished',
        'finalhandler',
      ).test(f.url),
  ],
  ['node http', (f) => /^node:(_http|internal\/http)/.test(f.url)],
];

/** Where a frame's code lives: a package, a Custodia module, Node itself, or V8. */
export function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(v8 builtins and native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith('node:')) {
    const path = url.slice('node:'.length).replace(/^internal\//, '');
    return `node:${path.split('/')[0].replace(/\.js$/, '')}`;
  }
  const dist = /\/dist\/(src|bench)\/(?:(.+)\/)?[^/]+\.js$/.exec(url);
  if (dist) return `custodia ${dist[1]}${dist[2] ? '/' + dist[2] : ''}`;
  return url;
}

function frameName({ functionName, url, lineNumber }: CallFrame): string {
  if (!url) return functionName || '(anonymous)';
  const file = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, 'dist/');
  return `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
}

export function summariseProfile(profile: CpuProfile, requests?: number, top = 15): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const frames = (id: number) => {
    const out: CallFrame[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      out.push(byId.get(n)!.callFrame);
    }
    return out;
  };
  const layerCache = new Map<number, string>();
  const layerOf = (id: number): string => {
    let layer = layerCache.get(id);
    if (layer) return layer;
    const stack = frames(id);
    const leaf = stack[0].functionName;
    if (leaf === '(garbage collector)') layer = 'garbage collection';
    else if (leaf === '(program)') layer = '(program: V8 and native, unattributed)';
    else {
      layer = stack.map((f) => LAYERS.find(([, test]) => test(f))?.[0]).find(Boolean);
      layer ??= stack.some((f) => /^node:(net|internal\/(streams|stream_base))/.test(f.url))
        ? 'socket I/O outside any package frame'
        : 'other';
    }
    layerCache.set(id, layer);
    return layer;
  };

  const byLayer = new Map<string, number>();
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    busy += dt;
    add(byLayer, layerOf(id), dt);
    add(byArea, areaOf(frame.url, frame.functionName), dt);
    add(byFunction, frameName(frame), dt);
  });

  const perRequest = (us: number) =>
    requests ? `${(us / 1000 / requests).toFixed(3).padStart(7)} ms  ` : '';
  const table = (title: string, m: Map<string, number>, n = Infinity) =>
    [
      title,
      ...[...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([k, v]) => `  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${perRequest(v)}${k}`),
    ].join('\n');
  const head =
    `main thread busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s` +
    (requests ? `; ${requests} requests, ${(busy / 1000 / requests).toFixed(3)} ms CPU each` : '');
  return [
    head,
    table('by layer (self time of each sample charged to its innermost known layer):', byLayer),
    table('self time by package or module:', byArea, top),
    table('self time by function:', byFunction, top),
  ].join('\n');
}

/** Reads a .cpuprofile a bench server wrote and summarises it (see summariseProfile). */
export async function summariseProfileFile(
  file: string,
  requests?: number,
  top?: number,
): Promise<string> {
  return summariseProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, requests, top);
}

function add(m: Map<string, number>, k: string, v: number): void {
  m.set(k, (m.get(k) ?? 0) + v);
}

if (require.main === module) {
  const [file, requests] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/lib/cpu-profile.js <file.cpuprofile> [requests]');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  console.log(summariseProfile(profile, requests ? Number(requests) : undefined));
}
