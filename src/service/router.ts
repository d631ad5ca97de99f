import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EngineApi } from '../types.js';
import { ApiError } from './errors.js';

/** One request as a handler sees it. `upgraded` is set when the client asked to hijack the connection. */
export interface Call {
  readonly req: IncomingMessage;
  /** undefined for an upgraded request: the handler writes to `upgraded.socket` itself (see streams.ts) */
  readonly res?: ServerResponse;
  readonly upgraded?: { socket: Duplex; head: Buffer };
  readonly engine: EngineApi;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  /** the API version the client speaks (from the path, else the newest) */
  readonly version: string;
  /** aborted when the client goes away: long streams (logs -f, events, wait, pull) stop there */
  readonly signal: AbortSignal;
  /** per-service state handlers share: exec instances, for one (see exec.ts) */
  readonly state: ServiceState;
}

/** What lives as long as the service: Berth has no daemon, so exec instances exist only here. */
export interface ServiceState {
  readonly shared: Map<string, unknown>;
}

export type Handler = (call: Call) => Promise<void>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

/**
 * Routes by method and path pattern (`/containers/{id}/start`); a `{name*}` last part takes the rest of the
 * path, slashes included (image names: `/images/127.0.0.1:5000/app:1/json` is matched by
 * `/images/{name*}/json` by trying the fixed suffix).
 */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  match(method: string, path: string): { handler: Handler; params: Record<string, string> } {
    const segs = path.split('/').filter(Boolean).map(decodeSegment);
    let pathKnown = false;
    for (const r of this.routes) {
      const params = matchParts(r.parts, segs);
      if (!params) continue;
      pathKnown = true;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { handler: r.handler, params };
    }
    if (pathKnown) throw new ApiError(405, `method ${method} not allowed for ${path}`);
    throw new ApiError(404, `page not found: ${method} ${path} is not an Engine API endpoint Berth serves`);
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, `the path segment "${s}" is not valid percent-encoding`);
  }
}

function matchParts(parts: readonly string[], segs: readonly string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  const rest = parts.findIndex((p) => p.endsWith('*}'));
  if (rest < 0) {
    if (parts.length !== segs.length) return undefined;
    for (const [i, p] of parts.entries()) if (!bind(p, segs[i]!, params)) return undefined;
    return params;
  }
  // A greedy part: the fixed parts before and after it must match, it takes what lies between (at least one).
  const before = parts.slice(0, rest);
  const after = parts.slice(rest + 1);
  if (segs.length < before.length + after.length + 1) return undefined;
  for (const [i, p] of before.entries()) if (!bind(p, segs[i]!, params)) return undefined;
  for (const [i, p] of after.entries()) if (!bind(p, segs[segs.length - after.length + i]!, params)) return undefined;
  params[parts[rest]!.slice(1, -2)] = segs.slice(before.length, segs.length - after.length).join('/');
  return params;
}

function bind(part: string, seg: string, params: Record<string, string>): boolean {
  if (part.startsWith('{') && part.endsWith('}')) {
    params[part.slice(1, -1)] = seg;
    return true;
  }
  return part === seg;
}
