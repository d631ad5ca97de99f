/**
 * Reading requests and writing answers the way Docker's daemon does: JSON bodies (bounded), its query
 * conventions (booleans as 1/true, filters as JSON in two forms), JSON answers, JSON-lines progress streams,
 * and the hijacked connections of attach and exec (streams.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, messageOf, statusOf } from './errors.js';
import type { Call } from './router.js';

/** A JSON body larger than this is refused (a container create is a few KB; compose's biggest, tens). */
export const JSON_BODY_LIMIT = 4 << 20;

export async function readBody(req: IncomingMessage, limit = JSON_BODY_LIMIT): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw new ApiError(413, `request body of ${declared} bytes is larger than the ${limit} bytes allowed`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new ApiError(413, `request body is larger than the ${limit} bytes allowed`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The body as a JSON object; an empty body is `{}` (Docker accepts a bodiless POST /containers/create? no: `empty`). */
export async function readJson<T = Record<string, unknown>>(call: Call, opts: { optional?: boolean } = {}): Promise<T> {
  const body = await readBody(call.req);
  if (!body.length) {
    if (opts.optional) return {} as T;
    throw new ApiError(400, 'the request body is empty; it must be a JSON object');
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'the request body must be a JSON object');
  return value as T;
}

/** Docker's boolean query values: 1, true, True (and 0, false); absent is `fallback`. */
export function boolParam(q: URLSearchParams, name: string, fallback = false): boolean {
  const v = q.get(name);
  if (v === null || v === '') return fallback;
  if (/^(1|true)$/i.test(v)) return true;
  if (/^(0|false)$/i.test(v)) return false;
  throw new ApiError(400, `invalid value for ${name}: "${v}" is not a boolean`);
}

export function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new ApiError(400, `invalid value for ${name}: "${v}" is not an integer`);
  return Number(v);
}

/**
 * `filters` as Docker takes it, JSON in either form: `{"label":["a=b"]}` or the older
 * `{"label":{"a=b":true}}`; returned as the `key=value` list Berth's list calls take.
 */
export function filtersParam(q: URLSearchParams): string[] {
  const raw = q.get('filters');
  if (raw === null || raw === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ApiError(400, `invalid filters: ${raw.slice(0, 200)} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'invalid filters: expected a JSON object of filter names');
  const out: string[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const values = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.entries(v).filter(([, on]) => on === true).map(([k]) => k) : undefined;
    if (!values || values.some((x) => typeof x !== 'string')) throw new ApiError(400, `invalid filters: the values of "${key}" must be strings`);
    for (const x of values as string[]) out.push(`${key}=${x}`);
  }
  return out;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** 204 No Content, or 304 for a start/stop that found the container already so (Docker's "not modified"). */
export function sendStatus(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // A stream already under way: the error can only end it.
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  sendJson(res, statusOf(err), { message: messageOf(err) });
}

/**
 * A JSON-lines stream (pull, push, load, build, events, stats): headers at once so the client starts
 * reading, then one object per line. A failure after the headers is written as `{"error", "errorDetail"}`,
 * as Docker does, since the status is already sent.
 */
export function jsonLines(res: ServerResponse): { write(obj: unknown): void; fail(err: unknown): void; end(): void } {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  return {
    write: (obj) => { if (!res.writableEnded) res.write(JSON.stringify(obj) + '\n'); },
    fail: (err) => {
      if (res.writableEnded) return;
      const message = messageOf(err);
      res.write(JSON.stringify({ errorDetail: { message }, error: message }) + '\n');
    },
    end: () => { if (!res.writableEnded) res.end(); },
  };
}
