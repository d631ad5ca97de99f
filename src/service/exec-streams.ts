/**
 * The stream side of attach and exec: the attach query, the body of an upgraded exec start, replaying the
 * log, and waiting for a container an attach came before (docker run attaches, then starts).
 */
import type { Writable } from 'node:stream';
import type { ContainerInspect, StdioStreams } from '../types.js';
import { NotFoundError } from '../errors.js';
import { ApiError } from './errors.js';
import { boolParam, JSON_BODY_LIMIT } from './http.js';
import type { Call } from './router.js';

const START_POLL_MS = 50;

export interface AttachQuery {
  stream: boolean;
  logs: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  detachKeys?: string;
}

export function attachQuery(q: URLSearchParams): AttachQuery {
  const detachKeys = q.get('detachKeys');
  return {
    stream: boolParam(q, 'stream'),
    logs: boolParam(q, 'logs'),
    stdin: boolParam(q, 'stdin'),
    stdout: boolParam(q, 'stdout'),
    stderr: boolParam(q, 'stderr'),
    ...(detachKeys ? { detachKeys } : {}),
  };
}

/** What the container logged so far, into the streams asked for (with a tty, all of it is stdout). */
export async function replayLogs(call: Call, id: string, streams: StdioStreams, tty: boolean): Promise<void> {
  for await (const e of call.engine.containers.logs(id)) {
    if (call.signal.aborted) return;
    const out = e.stream === 'stderr' && !tty ? streams.stderr : streams.stdout;
    if (out) await write(out, e.partial ? e.line : e.line + '\n');
  }
}

/**
 * Waits until container `c` (not running when the attach came) has been started: 'running', 'ended' when
 * it started and exited between two looks, 'gone' when it was removed or the client left.
 */
export async function untilStarted(call: Call, c: ContainerInspect): Promise<'running' | 'ended' | 'gone'> {
  for (;;) {
    await new Promise((r) => setTimeout(r, START_POLL_MS));
    if (call.signal.aborted) return 'gone';
    let now: ContainerInspect;
    try {
      now = await call.engine.containers.inspect(c.Id);
    } catch (err) {
      if (err instanceof NotFoundError) return 'gone';
      throw err;
    }
    if (now.State.Running) return 'running';
    if (now.State.StartedAt !== c.State.StartedAt) return 'ended';
  }
}

/**
 * The JSON body of an upgraded request: Node hands the bytes after the headers over as `head` (and the
 * socket), so the body is taken from there by its Content-Length; what follows is the client's stdin.
 */
export async function upgradedBody(call: Call): Promise<{ body: Record<string, unknown>; call: Call }> {
  const { socket, head } = call.upgraded!;
  const length = Number(call.req.headers['content-length'] ?? 0);
  if (!Number.isInteger(length) || length < 0) throw new ApiError(400, 'invalid Content-Length');
  if (length > JSON_BODY_LIMIT) throw new ApiError(413, `request body of ${length} bytes is larger than the ${JSON_BODY_LIMIT} bytes allowed`);
  let buf = head;
  if (buf.length < length) {
    buf = await new Promise<Buffer>((resolve, reject) => {
      const chunks = [buf];
      let size = buf.length;
      const onData = (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size >= length) {
          cleanup();
          socket.pause();
          resolve(Buffer.concat(chunks));
        }
      };
      const onEnd = () => { cleanup(); reject(new ApiError(400, 'the request body ended early')); };
      const cleanup = () => { socket.off('data', onData); socket.off('end', onEnd); socket.off('error', onEnd); };
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onEnd);
    });
  }
  const text = buf.subarray(0, length).toString('utf8');
  let body: unknown = {};
  if (length) {
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new ApiError(400, `the request body is not valid JSON: ${(err as Error).message}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
  }
  return { body: body as Record<string, unknown>, call: { ...call, upgraded: { socket, head: buf.subarray(length) } } };
}

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve) => out.write(text, () => resolve()));
}
