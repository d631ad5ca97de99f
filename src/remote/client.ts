/**
 * A small HTTP/1.1 client of the Engine API over the dialer's streams (Node's http module with an agent
 * whose connections are ours), and the one place where the API's answers become Berth's typed errors.
 */
import http, { type IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import {
  AlreadyExistsError, BadStateError, CannotInvokeError, CommandNotFoundError, InvalidArgumentError, NotFoundError, RegistryError, RemoteError, RuntimeError,
  type ObjectKind,
} from '../errors.js';
import { dialer } from './dial.js';
import { isTlsFailure, tlsRefusal } from './tls.js';
import type { HostTarget } from './uri.js';

/** The version every request names: what Berth's service speaks (src/service/versions.ts). */
export const API_PREFIX = '/v1.41';

/** What a failed call was about, so that a status becomes the right class (never chosen from the words alone). */
export interface CallSubject {
  kind?: ObjectKind;
  ref?: string;
  /** a 409 on create is the name taken (of a container, unless `conflictKind` says) */
  conflictIsName?: string;
  conflictKind?: ObjectKind;
  /** a 400 on start or exec is the command that cannot run: the words tell not-found (127) from not-invocable (126) */
  command?: string;
  /** a 401 is this registry refusing the login the call carried (POST /auth) */
  registry?: string;
}

export interface RequestOptions extends CallSubject {
  query?: Record<string, string | number | boolean | readonly string[] | undefined>;
  body?: unknown;
  /** a body streamed as it comes (a tar), chunked */
  stream?: Readable;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class ApiClient {
  private readonly agent: http.Agent;

  /** `env`: also where this client's own settings are read (its registry logins: src/remote/auth.ts). */
  constructor(readonly target: HostTarget, readonly env: NodeJS.ProcessEnv = process.env) {
    const d = dialer(target, env);
    // keepAlive: over ssh every new connection is a new ssh session and a new remote process.
    this.agent = new http.Agent({ keepAlive: true });
    (this.agent as unknown as { createConnection: () => Duplex }).createConnection = () => d.dial();
  }

  get uri(): string {
    return this.target.uri;
  }

  /** Ends idle connections (ssh sessions); in-flight ones end with their calls. */
  close(): void {
    this.agent.destroy();
  }

  /** The answer, its status already checked (2xx and 304); the caller reads or drains the body. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<IncomingMessage> {
    const res = await this.send(method, path, opts);
    if (res.statusCode! >= 200 && res.statusCode! < 400) return res;
    const body = await readAll(res).catch(() => Buffer.alloc(0));
    throw this.refusal(res.statusCode!, messageIn(body), opts);
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    const body = await readAll(res);
    if (!body.length) return undefined as T;
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch (err) {
      throw new RemoteError('protocol', this.uri, `${method} ${path}: the answer from ${this.uri} is not JSON`, 'check that the address is a Berth (or Docker) Engine API', { cause: err });
    }
  }

  /** A call whose answer carries nothing (204). */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<number> {
    const res = await this.request(method, path, opts);
    res.resume();
    return res.statusCode!;
  }

  /** Hijacks the connection (attach, exec start): the socket carries the stream both ways from here. */
  upgrade(path: string, opts: RequestOptions = {}): Promise<{ socket: Duplex; head: Buffer }> {
    return new Promise((resolve, reject) => {
      const data = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
      const req = http.request({
        agent: this.agent, method: 'POST', path: API_PREFIX + path + queryString(opts.query),
        headers: { Host: 'berth', Connection: 'Upgrade', Upgrade: 'tcp', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) },
      });
      req.on('upgrade', (_res, socket, head) => resolve({ socket, head }));
      req.on('response', (res) => {
        void readAll(res).catch(() => Buffer.alloc(0)).then((body) => reject(this.refusal(res.statusCode!, messageIn(body), opts)));
      });
      this.onFailure(req, reject);
      req.end(data);
    });
  }

  private send(method: string, path: string, opts: RequestOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const data = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
      const req = http.request({
        agent: this.agent, method, path: API_PREFIX + path + queryString(opts.query), signal: opts.signal,
        headers: {
          Host: 'berth', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}),
          ...(opts.stream ? { 'Content-Type': opts.contentType ?? 'application/octet-stream', 'Transfer-Encoding': 'chunked' } : {}), ...opts.headers,
        },
      }, resolve);
      this.onFailure(req, reject);
      if (!opts.stream) return void req.end(data);
      // A source that fails (tar refusing a file) aborts the request: the remote drops what it received.
      opts.stream.once('error', (err) => req.destroy(err));
      opts.stream.pipe(req);
    });
  }

  /**
   * A connection that failed or ended before the answer: the dialer's typed error when it has one (ssh
   * tells why only when it exits, a moment after its stdout ends), else the socket's.
   */
  private onFailure(req: http.ClientRequest, reject: (err: unknown) => void): void {
    let socket: (Duplex & { exited?: Promise<RemoteError | undefined> }) | undefined;
    req.on('socket', (s) => { socket = s as typeof socket; });
    req.on('error', (err) => {
      if (err instanceof RemoteError || (err as Error).name === 'AbortError') return reject(err);
      // A peer's alert (TLS 1.3 refuses a client certificate after the handshake) arrives as a read error.
      const secure = this.target.kind === 'tcp' && !!this.target.tls;
      if (isTlsFailure((err as NodeJS.ErrnoException).code)) return reject(tlsRefusal(this.uri, err as Error, secure));
      // Node's server checks a client certificate after the handshake and just closes: on a fresh TLS
      // connection, a hang-up before any answer is that refusal (a reused one may have hit the idle time-out).
      if (secure && !req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        return reject(tlsRefusal(this.uri, new Error('the server closed the connection after the handshake: it did not accept this client\'s certificate', { cause: err }), true));
      }
      const why = socket?.exited ? Promise.race([socket.exited, delay(3000)]) : Promise.resolve(undefined);
      void why.then((typed) => reject(typed ?? new RemoteError('dropped', this.uri, `the connection to ${this.uri} ended before its answer: ${(err as Error).message}`,
        'check that the remote service still runs; run the command again', { cause: err })));
    });
  }

  /**
   * The Engine API's refusals as Berth's classes, by status and by what was asked (`subject`). Only a
   * start's or exec's 400 is read for words, as the docker CLI reads them: the API has no other way to tell
   * "executable file not found" (127) from "permission denied" (126).
   */
  refusal(status: number, message: string, subject: CallSubject): Error {
    const where = ` (on ${this.uri})`;
    if (status === 401 && subject.registry) {
      return new RegistryError('unauthorized', subject.registry, '', `the login was refused: ${message}${where}`, 'check the username and password', { status });
    }
    if (status === 404 && subject.kind) return new NotFoundError(subject.kind, subject.ref ?? '?', undefined, { cause: new Error(message) });
    if (status === 409 && subject.conflictIsName) return new AlreadyExistsError(subject.conflictKind ?? 'container', subject.conflictIsName, undefined, { cause: new Error(message) });
    // Docker's 403: a network that is predefined or still has endpoints.
    if (status === 403) return new BadStateError(message + where, 'check the object\'s state with "berth network inspect"');
    if (status === 409) return new BadStateError(message + where, 'check the object\'s state with "berth ps -a" or "berth inspect"');
    if (status === 400 && subject.command) {
      if (/executable file not found|no such file or directory/.test(message)) return new CommandNotFoundError(subject.command, { cause: new Error(message) });
      if (/permission denied|is a directory|exec format error/.test(message)) return new CannotInvokeError(subject.command, message);
    }
    if (status === 400) return new InvalidArgumentError('request', message + where, 'check the values given');
    if (status === 404) return new RemoteError('protocol', this.uri, `${message}${where}`, 'the remote engine does not serve this call; upgrade Berth there');
    return new RuntimeError(`the remote engine failed: ${message}${where}`, 'see the message above; the remote host\'s berth can tell more (berth -D there)');
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

export function queryString(q: RequestOptions['query']): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (Array.isArray(v)) for (const x of v) p.append(k, x);
    else if (v !== undefined) p.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

export async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function messageIn(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const v = JSON.parse(text) as { message?: unknown };
    if (typeof v.message === 'string') return v.message;
  } catch { /* not JSON: the text itself */ }
  return text.trim() || 'no message';
}
