/**
 * ClusterStore over etcd v3's JSON gateway (grpc-gateway: POST /v3/kv/range etc., keys and values in base64,
 * 64-bit numbers as decimal strings), spoken with node:http/https. Why not the `etcd3` package: see
 * README.md ("Why the JSON gateway").
 *
 * Endpoints are tried in order; a connection that fails (refused, reset, unreachable, no answer by the
 * deadline) moves on to the next, and when every one failed the call throws ClusterUnavailableError. A change
 * whose answer was lost after it was sent is not sent again elsewhere (it may have been applied): the error
 * says `outcomeUnknown`. gRPC status codes in the gateway's error bodies become ClusterStoreError reasons.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { ClusterStoreError, ClusterUnavailableError, InvalidArgumentError, type ClusterFailure } from '../errors.js';
import type { ClusterStoreOpts, ClusterStoreUri } from './settings.js';
import { prefixEnd, type ClusterStore, type DeleteOptions, type KeyValue, type LeaseId, type PutOptions, type Watch, type WatchEvent } from './store.js';

export interface EtcdOptions {
  /** deadline of every request, per endpoint, in ms (default 5000) */
  timeoutMs?: number;
  /** TLS files and credentials (cluster-store-opts) */
  opts?: ClusterStoreOpts;
  /** longest pause between a watch's reconnection attempts, in ms (default 2000) */
  watchRetryMaxMs?: number;
}

interface RawKv { key?: string; value?: string; mod_revision?: string; create_revision?: string; lease?: string }
interface Header { revision?: string }

/** gRPC status codes (google.golang.org/grpc/codes) that etcd's gateway returns in error bodies. */
const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, FAILED_PRECONDITION: 9, OUT_OF_RANGE: 11, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');
const num = (s: string | undefined) => Number(s ?? 0);

function toKv(raw: RawKv): KeyValue {
  const kv: KeyValue = { key: unb64(raw.key), value: unb64(raw.value), modRevision: num(raw.mod_revision), createRevision: num(raw.create_revision) };
  if (raw.lease && raw.lease !== '0') kv.lease = raw.lease as LeaseId;
  return kv;
}

function leaseField(lease: LeaseId | undefined): { lease?: string } {
  return lease === undefined ? {} : { lease };
}

/** Failed before the request reached etcd: safe to send it to the next endpoint. */
class ConnectFailure extends Error {}
/** Failed after the request was sent: a read may be retried elsewhere, a change may not. */
class AnswerLost extends Error {}
/** etcd answered with a gRPC status. */
class GrpcFailure extends Error {
  constructor(readonly grpcCode: number, readonly detail: string, readonly endpoint: string) {
    super(detail);
  }
}

function failureReason(code: number): ClusterFailure {
  switch (code) {
    case GRPC.NOT_FOUND: return 'lease-not-found';
    case GRPC.UNAUTHENTICATED: return 'unauthenticated';
    case GRPC.PERMISSION_DENIED: return 'permission';
    case GRPC.OUT_OF_RANGE: return 'compacted';
    case GRPC.INVALID_ARGUMENT: case GRPC.FAILED_PRECONDITION: return 'invalid';
    default: return 'other';
  }
}

const HINTS: Record<ClusterFailure, string> = {
  'lease-not-found': 'the lease expired or was revoked: grant a new one and write the keys again',
  'unauthenticated': 'check cluster-store-opts kv.username and kv.password in the config file',
  'permission': 'grant the etcd user a role that covers the /berth/ prefix (etcdctl role grant-permission --prefix)',
  'compacted': 'list the keys again and watch from the revision the list returns',
  'invalid': 'if etcd has auth enabled, give cluster-store-opts kv.username and kv.password; otherwise this is a bug in Berth: report it',
  'protocol': 'check that the cluster-store URI names etcd\'s client port (2379), not its peer port or another service',
  'other': 'check etcd\'s log',
};

function storeError(f: GrpcFailure): ClusterStoreError {
  const reason = failureReason(f.grpcCode);
  return new ClusterStoreError(reason, f.endpoint, f.detail, HINTS[reason], { grpcCode: f.grpcCode });
}

export class EtcdStore implements ClusterStore {
  readonly endpoints: readonly string[];
  private readonly timeoutMs: number;
  private readonly watchRetryMaxMs: number;
  private readonly agent: http.Agent;
  private readonly tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private readonly credentials: { name: string; password: string } | undefined;
  private token: string | undefined;
  private authenticating: Promise<string> | undefined;
  /** the endpoint that answered last: tried first next time */
  private preferred = 0;
  private readonly watches = new Set<() => void>();
  private closed = false;

  constructor(uri: ClusterStoreUri, options: EtcdOptions = {}) {
    this.endpoints = uri.endpoints.map((e) => e.url);
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.watchRetryMaxMs = options.watchRetryMaxMs ?? 2000;
    const o = options.opts ?? {};
    if (o['kv.username'] && o['kv.password']) this.credentials = { name: o['kv.username'], password: o['kv.password'] };
    // No keep-alive: after an etcd restart a kept socket fails with ECONNRESET once the request is written,
    // which cannot be told from a change whose answer was lost. A fresh connection per call costs well under
    // a millisecond on a LAN, and a command makes only a few calls.
    this.tlsFiles = uri.tls ? { ca: readOpt(o, 'kv.cacertfile'), cert: readOpt(o, 'kv.certfile'), key: readOpt(o, 'kv.keyfile') } : {};
    this.agent = uri.tls ? new https.Agent({ keepAlive: false, ...this.tlsFiles }) : new http.Agent({ keepAlive: false });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { key: b64(key) }, { read: true });
    return r.kvs?.length ? toKv(r.kvs[0]!) : undefined;
  }

  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const k = Buffer.from(prefix);
    const r = await this.call<{ kvs?: RawKv[]; header?: Header }>('/v3/kv/range', { key: b64(k), range_end: b64(prefixEnd(k)) }, { read: true });
    return { kvs: (r.kvs ?? []).map(toKv), revision: num(r.header?.revision) };
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<number> {
    const r = await this.call<{ header?: Header }>('/v3/kv/put', { key: b64(key), value: b64(value), ...leaseField(opts.lease) });
    return num(r.header?.revision);
  }

  create(key: string, value: string, opts: PutOptions = {}): Promise<boolean> {
    return this.createAll([{ key, value, lease: opts.lease }]);
  }

  async createAll(entries: readonly { key: string; value: string; lease?: LeaseId }[]): Promise<boolean> {
    if (!entries.length) return true;
    // create_revision 0 is etcd's "the key does not exist".
    return this.txn(
      entries.map((e) => ({ key: b64(e.key), target: 'CREATE', result: 'EQUAL', create_revision: '0' })),
      entries.map((e) => ({ request_put: { key: b64(e.key), value: b64(e.value), ...leaseField(e.lease) } })),
    );
  }

  compareAndSwap(key: string, expectedModRevision: number, value: string, opts: PutOptions = {}): Promise<boolean> {
    return this.txn(
      [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(expectedModRevision) }],
      [{ request_put: { key: b64(key), value: b64(value), ...leaseField(opts.lease) } }],
    );
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<boolean> {
    const compare: object[] = [];
    if (opts.ifModRevision !== undefined) compare.push({ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(opts.ifModRevision) });
    if (opts.ifValue !== undefined) compare.push({ key: b64(key), target: 'VALUE', result: 'EQUAL', value: b64(opts.ifValue) });
    if (!compare.length) {
      const r = await this.call<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(key) });
      return num(r.deleted) > 0;
    }
    const r = await this.call<{ succeeded?: boolean; responses?: { response_delete_range?: { deleted?: string } }[] }>('/v3/kv/txn',
      { compare, success: [{ request_delete_range: { key: b64(key) } }] });
    return r.succeeded === true && num(r.responses?.[0]?.response_delete_range?.deleted) > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (!prefix) throw new InvalidArgumentError('prefix', 'an empty prefix would delete every key in the store', 'name the prefix to delete');
    const k = Buffer.from(prefix);
    const r = await this.call<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(k), range_end: b64(prefixEnd(k)) });
    return num(r.deleted);
  }

  async grantLease(ttlSeconds: number): Promise<LeaseId> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new InvalidArgumentError('lease TTL', `${ttlSeconds} is not a whole number of seconds ≥ 1`);
    const r = await this.call<{ ID?: string; error?: string }>('/v3/lease/grant', { TTL: String(ttlSeconds), ID: '0' });
    if (!r.ID) throw new ClusterStoreError('protocol', this.endpoints[this.preferred]!, `no lease ID in the answer${r.error ? ` (${r.error})` : ''}`, HINTS.protocol);
    return r.ID as LeaseId;
  }

  async keepAliveOnce(id: LeaseId): Promise<number> {
    // A streaming call: one request line in, one result line out (etcd answers TTL 0 for a lease that is gone).
    const r = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: id }, { read: true });
    return Math.max(0, num(r.result?.TTL));
  }

  async revokeLease(id: LeaseId): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id });
  }

  watch(prefix: string, opts: { fromRevision?: number } = {}): Watch {
    return new EtcdWatch(this, prefix, opts.fromRevision);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const stop of [...this.watches]) stop();
    this.agent.destroy();
  }

  /** @internal for EtcdWatch */
  registerWatch(stop: () => void): () => void {
    this.watches.add(stop);
    return () => this.watches.delete(stop);
  }

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }

  private async txn(compare: object[], success: object[]): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', { compare, success });
    return r.succeeded === true;
  }

  /**
   * One unary call: endpoints in turn from the last good one, the auth token in `Authorization`
   * (re-authenticated once when etcd says it expired), etcd's errors turned into ClusterStoreError.
   */
  async call<T>(path: string, body: object, opts: { read?: boolean } = {}): Promise<T> {
    try {
      return await this.callOnce<T>(path, body, opts, await this.currentToken());
    } catch (err) {
      if (err instanceof GrpcFailure && err.grpcCode === GRPC.UNAUTHENTICATED && this.credentials) {
        // Simple tokens expire (etcd's --auth-token-ttl, 300 s by default): get a new one and try once more.
        this.token = undefined;
        try {
          return await this.callOnce<T>(path, body, opts, await this.currentToken());
        } catch (again) {
          throw again instanceof GrpcFailure ? storeError(again) : again;
        }
      }
      throw err instanceof GrpcFailure ? storeError(err) : err;
    }
  }

  private async currentToken(): Promise<string | undefined> {
    if (!this.credentials) return undefined;
    if (this.token) return this.token;
    this.authenticating ??= this.callOnce<{ token?: string }>('/v3/auth/authenticate', this.credentials, { read: true }, undefined)
      .then((r) => {
        if (!r.token) throw new ClusterStoreError('unauthenticated', this.endpoints[this.preferred]!, 'etcd returned no token: is auth enabled on it?', HINTS.unauthenticated);
        this.token = r.token;
        return r.token;
      }, (err: unknown) => {
        throw err instanceof GrpcFailure ? new ClusterStoreError('unauthenticated', err.endpoint, err.detail, HINTS.unauthenticated, { grpcCode: err.grpcCode }) : err;
      })
      .finally(() => {
        this.authenticating = undefined;
      });
    return this.authenticating;
  }

  private async callOnce<T>(path: string, body: object, opts: { read?: boolean }, token: string | undefined): Promise<T> {
    if (this.closed) throw new ClusterUnavailableError(this.endpoints, 'the store was closed');
    const reasons: string[] = [];
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const index = (this.preferred + i) % n;
      const endpoint = this.endpoints[index]!;
      try {
        const result = await this.request<T>(endpoint, path, body, token);
        this.preferred = index;
        return result;
      } catch (err) {
        if (err instanceof GrpcFailure) {
          if (err.grpcCode !== GRPC.UNAVAILABLE) throw err;
          // UNAVAILABLE is "no leader" but also "request timed out", after which a change may have been
          // applied: only a read goes to the next member.
          if (!opts.read) throw new ClusterUnavailableError(this.endpoints, `${endpoint}: ${err.detail}`, { outcomeUnknown: true, cause: err });
          reasons.push(`${endpoint}: ${err.detail}`);
          continue;
        }
        if (err instanceof ConnectFailure || (err instanceof AnswerLost && opts.read)) {
          reasons.push(`${endpoint}: ${err.message}`);
          continue;
        }
        if (err instanceof AnswerLost) throw new ClusterUnavailableError(this.endpoints, `${endpoint}: ${err.message}`, { outcomeUnknown: true });
        throw err;
      }
    }
    throw new ClusterUnavailableError(this.endpoints, reasons.join('; '));
  }

  private request<T>(endpoint: string, path: string, body: object, token: string | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const data = JSON.stringify(body);
      const url = new URL(path, endpoint);
      const mod = url.protocol === 'https:' ? https : http;
      let connected = false;
      let settled = false;
      const finish = (err: Error | undefined, value?: T) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(value as T);
      };
      const req = mod.request(url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...(token ? { authorization: token } : {}) },
      });
      // Deadline over the whole exchange: connect, send, answer.
      const timer = setTimeout(() => finish(connected ? new AnswerLost(`no answer within ${this.timeoutMs} ms`) : new ConnectFailure(`no connection within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('socket', (socket) => {
        socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
          connected = true;
        });
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const what = err.code ?? err.message;
        finish(connected ? new AnswerLost(`connection lost (${what})`) : new ConnectFailure(`cannot connect (${tlsWording(err) ?? what})`));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err: NodeJS.ErrnoException) => finish(new AnswerLost(`answer cut off (${err.code ?? err.message})`)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          // Streaming calls (keepalive) answer newline-delimited JSON: the first line is the answer.
          const first = text.split('\n').find((l) => l.trim() !== '') ?? '';
          let parsed: unknown;
          try {
            parsed = JSON.parse(first);
          } catch {
            finish(new ClusterStoreError('protocol', endpoint, `HTTP ${res.statusCode}, not etcd's JSON: ${first.slice(0, 120)}`, HINTS.protocol));
            return;
          }
          const e = parsed as { code?: number; error?: unknown; message?: string };
          // grpc-gateway sends a streaming call's error as a line {"error":{"grpc_code":N,"message":...}} under
          // HTTP 200 (etcd 3.4 checks no auth on keepalive, so this is seen only from other versions).
          const streamed = e.error && typeof e.error === 'object' ? e.error as { grpc_code?: number; message?: string } : undefined;
          if (streamed) {
            finish(new GrpcFailure(streamed.grpc_code ?? 2, streamed.message ?? 'stream error', endpoint));
            return;
          }
          if ((res.statusCode ?? 500) >= 400 || (typeof e.code === 'number' && e.code !== 0 && typeof e.error === 'string')) {
            finish(new GrpcFailure(typeof e.code === 'number' ? e.code : 2, String(e.message ?? e.error ?? `HTTP ${res.statusCode}`), endpoint));
            return;
          }
          finish(undefined, parsed as T);
        });
      });
      req.end(data);
    });
  }

  /** @internal: a streaming POST for watches; resolves with the response once headers arrive. */
  openStream(endpoint: string, path: string, body: object, token: string | undefined, signal: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const url = new URL(path, endpoint);
      const mod = url.protocol === 'https:' ? https : http;
      // Its own connection: a watch holds its socket for as long as it lives.
      const req = mod.request(url, {
        method: 'POST', signal, agent: false,
        ...this.tlsFiles,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: token } : {}) },
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      req.end(data);
    });
  }

  /** @internal */
  tokenForWatch(): Promise<string | undefined> {
    return this.currentToken();
  }

  /** @internal */
  dropToken(): void {
    this.token = undefined;
  }

  /** @internal */
  get retryMaxMs(): number {
    return this.watchRetryMaxMs;
  }
}

function readOpt(o: ClusterStoreOpts, name: 'kv.cacertfile' | 'kv.certfile' | 'kv.keyfile'): Buffer | undefined {
  const file = o[name];
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InvalidArgumentError(`cluster-store-opts ${name}`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'give the path of a PEM file this user can read');
  }
}

function tlsWording(err: NodeJS.ErrnoException): string | undefined {
  if (!err.code) return undefined;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(err.code)) return `TLS: ${err.code}; is kv.cacertfile the CA that signed etcd's certificate?`;
  if (err.code === 'EPROTO') return 'TLS handshake failed (EPROTO): does etcd speak TLS on that port, and plain etcd:// not?';
  return undefined;
}

interface RawWatchResult {
  header?: Header;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: 'PUT' | 'DELETE'; kv?: RawKv }[];
}

/**
 * A watch over a streaming POST /v3/watch. When the stream breaks (etcd restarted, the member went away) it
 * reconnects, to the next endpoint in turn, from the revision after the last one it delivered, with a
 * growing pause (up to watchRetryMaxMs). Events are queued until read.
 */
class EtcdWatch implements Watch {
  private readonly queue: WatchEvent[] = [];
  private waiting: (() => void) | undefined;
  private done = false;
  private readonly abort = new AbortController();
  private readonly unregister: () => void;
  /** the next revision to ask for; undefined: "from now" (until the first answer gives the revision) */
  private next: number | undefined;

  constructor(private readonly store: EtcdStore, private readonly prefix: string, fromRevision: number | undefined) {
    this.next = fromRevision;
    this.unregister = store.registerWatch(() => this.close());
    void this.run();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    this.unregister();
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    try {
      for (;;) {
        const ev = this.queue.shift();
        if (ev) {
          yield ev;
          continue;
        }
        if (this.done) return;
        await new Promise<void>((resolve) => {
          this.waiting = resolve;
        });
      }
    } finally {
      this.close();
    }
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  private push(ev: WatchEvent): void {
    this.queue.push(ev);
    this.wake();
  }

  private async run(): Promise<void> {
    const k = Buffer.from(this.prefix);
    let attempt = 0;
    let index = 0;
    while (!this.done && !this.store.isClosed) {
      const endpoint = this.store.endpoints[index % this.store.endpoints.length]!;
      try {
        const token = await this.store.tokenForWatch();
        const create: Record<string, unknown> = { key: b64(k), range_end: b64(prefixEnd(k)) };
        if (this.next !== undefined) create.start_revision = String(this.next);
        const res = await this.store.openStream(endpoint, '/v3/watch', { create_request: create }, token, this.abort.signal);
        if ((res.statusCode ?? 500) >= 400) {
          res.resume();
          throw new Error(`HTTP ${res.statusCode}`);
        }
        let buffered = '';
        for await (const chunk of res) {
          buffered += (chunk as Buffer).toString('utf8');
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line) as { result?: RawWatchResult; error?: { grpc_code?: number; message?: string } };
            if (msg.error) {
              if (msg.error.grpc_code === GRPC.UNAUTHENTICATED) this.store.dropToken();
              throw new Error(msg.error.message ?? 'watch error');
            }
            const r = msg.result;
            if (!r) continue;
            attempt = 0;
            if (r.compact_revision && r.compact_revision !== '0') {
              this.push({ type: 'compacted', compactRevision: num(r.compact_revision) });
              this.close();
              return;
            }
            if (r.created && this.next === undefined) this.next = num(r.header?.revision) + 1;
            for (const ev of r.events ?? []) {
              const kv = toKv(ev.kv ?? {});
              this.push(ev.type === 'DELETE' ? { type: 'delete', key: kv.key, modRevision: kv.modRevision } : { type: 'put', kv });
              this.next = kv.modRevision + 1;
            }
            if (r.canceled) {
              // etcd cancels a watch whose token it no longer takes (only cancel_reason's text says so):
              // any cancel makes the next attempt authenticate afresh, which costs one call at most.
              this.store.dropToken();
              throw new Error(r.cancel_reason || 'watch canceled by etcd');
            }
          }
        }
        throw new Error('stream ended');
      } catch {
        if (this.done || this.store.isClosed) break;
        // The next endpoint, after a pause that grows with each failure in a row.
        index++;
        attempt++;
        const pause = Math.min(this.store.retryMaxMs, 100 * 2 ** Math.min(attempt, 10));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, pause);
          this.abort.signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
      }
    }
    this.close();
  }
}
