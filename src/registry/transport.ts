/**
 * HTTP(S) to one registry host. What it decides, once per session:
 * - the scheme: HTTPS, verified against the system CAs plus `certs.d/HOST[:PORT]/*.crt`; plain HTTP only
 *   for loopback hosts (as Docker allows 127.0.0.0/8 by default), for configured insecure registries and
 *   with `tlsVerify: false`; those try HTTPS first and fall back to HTTP when the host does not speak TLS
 * - certificates: configured insecure registries and `tlsVerify: false` accept any certificate; loopback
 *   hosts do not (a self-signed certificate there is refused as anywhere else)
 * - proxies from the environment (proxy.ts), connect and idle time-outs, retries of idempotent requests,
 *   and caps on the bodies it reads into memory.
 * Every failure is a RegistryError whose reason is chosen here from the socket error or the status.
 */
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { RegistryError, type RegistryFailure } from '../errors.js';
import type { RegistriesConfig } from './index.js';
import { registryEndpoint, splitHostPort } from './names.js';
import { makeAgent, proxyFor, type ProxyEnv } from './proxy.js';

export interface Timeouts {
  /** time to establish a connection (TCP and TLS) */
  connectMs: number;
  /** longest silence on a connection while a request or response is under way */
  idleMs: number;
}

/** Docker's dialer waits 30 s to connect; a registry silent for a minute mid-transfer is taken as gone. */
export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 30_000, idleMs: 60_000 };

export interface TransportOptions {
  config: RegistriesConfig;
  /** false: any certificate, and plain HTTP (`--tls-verify=false`) */
  tlsVerify?: boolean;
  timeouts?: Partial<Timeouts>;
  signal?: AbortSignal;
  /** where HTTP(S)_PROXY/NO_PROXY are read (default process.env) */
  env?: ProxyEnv;
  /** retries of idempotent requests after a reset, 5xx or 429 (default 2) */
  retries?: number;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: Method;
  /** `/v2/...` on the registry, or an absolute URL (an upload location, a redirect, a token realm) */
  url: string;
  headers?: Record<string, string>;
  /** a Buffer, or a function opening the body (called again when the request is sent again) */
  body?: Buffer | (() => Readable);
  /** what the request is about, for errors: `127.0.0.1:5000/a/b:tag` */
  reference: string;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  /** the body; read it (readBody) or `resume()` it */
  body: http.IncomingMessage;
}

export const MiB = 1024 * 1024;

/** Loopback: plain HTTP may be spoken to it (Docker allows 127.0.0.0/8 as insecure by default). */
export function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  if (net.isIPv4(hostname)) return hostname.startsWith('127.');
  return hostname === '::1' || hostname === '0:0:0:0:0:0:0:1';
}

/** True when `registry` is named by an `insecure` entry: `host[:port]`, or a CIDR holding its IP. */
export function isInsecureRegistry(registry: string, insecure: readonly string[]): boolean {
  const { hostname } = splitHostPort(registry);
  for (const entry of insecure) {
    if (entry === registry || entry === hostname) return true;
    const slash = entry.indexOf('/');
    if (slash > 0 && net.isIP(hostname)) {
      const list = new net.BlockList();
      const base = entry.slice(0, slash);
      const type = net.isIPv6(base) ? 'ipv6' : 'ipv4';
      try {
        list.addSubnet(base, Number(entry.slice(slash + 1)), type);
        if (list.check(hostname, net.isIPv6(hostname) ? 'ipv6' : 'ipv4')) return true;
      } catch { /* config validation refuses a bad CIDR before this is reached */ }
    }
  }
  return false;
}

/** CA certificates and a client certificate from `DIR/HOST[:PORT]/` of each certs dir (Docker's certs.d). */
export function readCertsDirs(registry: string, dirs: readonly string[]): { ca: string[]; cert?: string; key?: string; files: string[] } {
  const out: { ca: string[]; cert?: string; key?: string; files: string[] } = { ca: [], files: [] };
  for (const dir of dirs) {
    const hostDir = path.join(dir, registry);
    let names: string[];
    try {
      names = readdirSync(hostDir).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      const file = path.join(hostDir, name);
      if (name.endsWith('.crt')) {
        out.ca.push(readFileSync(file, 'utf8'));
        out.files.push(file);
      } else if (name.endsWith('.cert') && out.cert === undefined) {
        // Docker's rule: client.cert goes with client.key; one without the other is an error.
        const keyName = `${name.slice(0, -'.cert'.length)}.key`;
        if (!names.includes(keyName)) {
          throw new RegistryError('tls', registry, '', `client certificate ${file} has no key ${keyName} beside it`,
            `put the key in ${path.join(hostDir, keyName)}, or remove the certificate`);
        }
        out.cert = readFileSync(file, 'utf8');
        out.key = readFileSync(path.join(hostDir, keyName), 'utf8');
        out.files.push(file);
      }
    }
  }
  return out;
}

let systemCAs: string[] | undefined;
/** Node's bundled roots plus the system bundle (Debian's ca-certificates), which holds site-added CAs. */
function systemCertificates(): string[] {
  if (systemCAs) return systemCAs;
  const list = [...tls.rootCertificates];
  for (const file of ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt']) {
    try {
      list.push(readFileSync(file, 'utf8'));
      break;
    } catch { /* not this distribution's path */ }
  }
  systemCAs = list;
  return list;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'INVALID_CA', 'EPROTO',
]);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('CERT_');
}

/** A socket error that says "this host does not speak TLS": worth trying plain HTTP where that is allowed. */
function notSpeakingTls(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG'
    || (code === 'ECONNRESET' && /socket disconnected before secure/i.test(err.message)) || /wrong version number|packet length too long/i.test(err.message);
}

class TransportFailure extends Error {
  constructor(readonly reason: RegistryFailure, readonly errno: NodeJS.ErrnoException | undefined, message: string) {
    super(message);
  }
}

export class Transport {
  readonly registry: string;
  /** host[:port] requests go to (docker.io → registry-1.docker.io) */
  readonly endpoint: string;
  readonly timeouts: Timeouts;
  private readonly verify: boolean;
  /** plain HTTP may be spoken to this registry (loopback, insecure, or --tls-verify=false) */
  readonly plainAllowed: boolean;
  private readonly httpsAgent: http.Agent;
  private readonly httpAgent: http.Agent;
  private readonly extraAgents = new Map<string, http.Agent>();
  private readonly certFiles: string[];
  private base: Promise<URL> | undefined;

  constructor(registry: string, private readonly opts: TransportOptions) {
    this.registry = registry;
    this.endpoint = registryEndpoint(registry);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    const insecure = isInsecureRegistry(registry, opts.config.insecure);
    this.verify = opts.tlsVerify !== false && !insecure;
    this.plainAllowed = !this.verify || isLoopback(splitHostPort(this.endpoint).hostname);
    const certs = readCertsDirs(registry, opts.config.certsDirs);
    this.certFiles = certs.files;
    const env = opts.env ?? process.env;
    this.httpsAgent = makeAgent('https', proxyFor(`https://${this.endpoint}/`, env), this.timeouts.connectMs, {
      keepAlive: true, maxSockets: 16,
      rejectUnauthorized: this.verify,
      ...(certs.ca.length > 0 && { ca: [...systemCertificates(), ...certs.ca] }),
      ...(certs.cert !== undefined && { cert: certs.cert, key: certs.key }),
    });
    this.httpAgent = makeAgent('http', proxyFor(`http://${this.endpoint}/`, env), this.timeouts.connectMs, { keepAlive: true, maxSockets: 16 });
  }

  /** Drops pooled connections. */
  close(): void {
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
    for (const a of this.extraAgents.values()) a.destroy();
  }

  /**
   * The registry's base URL, found by GET /v2/ (over HTTPS, then plain HTTP where allowed); the answer
   * (200, or 401 with its challenge) is returned for the auth flow.
   */
  async resolveBase(reference: string): Promise<{ base: URL; ping: HttpResponse | undefined }> {
    if (this.base) return { base: await this.base, ping: undefined };
    let ping: HttpResponse | undefined;
    this.base = (async () => {
      const https = new URL(`https://${this.endpoint}/`);
      try {
        ping = await this.send({ method: 'GET', url: new URL('/v2/', https).href, reference }, true);
        return https;
      } catch (err) {
        if (!(err instanceof TransportFailure) || !this.plainAllowed) throw err;
        if (err.reason !== 'tls' && err.reason !== 'unreachable') throw err;
        if (err.reason === 'tls' && !(err.errno && notSpeakingTls(err.errno))) throw err;
        const plain = new URL(`http://${this.endpoint}/`);
        try {
          ping = await this.send({ method: 'GET', url: new URL('/v2/', plain).href, reference }, true);
        } catch (plainErr) {
          // Both failed: the HTTPS failure says more unless the host is simply not there.
          throw plainErr instanceof TransportFailure && plainErr.reason === 'unreachable' && err.reason !== 'unreachable' ? err : plainErr;
        }
        return plain;
      }
    })();
    try {
      return { base: await this.base, ping };
    } catch (err) {
      this.base = undefined;
      throw this.toRegistryError(err, reference);
    }
  }

  /**
   * Sends one request (GET and HEAD retried after a reset, 5xx or 429); the response is returned whatever
   * its status. Redirects are not followed here (the client follows them for blobs).
   */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const { base } = await this.resolveBase(req.reference);
    const url = new URL(req.url, base);
    const idempotent = req.method === 'GET' || req.method === 'HEAD';
    const retries = idempotent ? this.opts.retries ?? 2 : 0;
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.send({ ...req, url: url.href }, false);
      } catch (err) {
        const retryable = err instanceof TransportFailure && err.reason === 'unreachable' && err.errno?.code !== undefined && RESET_CODES.has(err.errno.code);
        if (attempt < retries && retryable) {
          await this.backoff(attempt, undefined);
          continue;
        }
        throw this.toRegistryError(err, req.reference);
      }
      if (attempt < retries && (res.status >= 500 || res.status === 429)) {
        res.body.resume();
        await this.backoff(attempt, res.headers['retry-after']);
        continue;
      }
      return res;
    }
  }

  private async backoff(attempt: number, retryAfter: string | undefined): Promise<void> {
    const asked = retryAfter !== undefined && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0;
    // A short wait: a registry asking for more than a few seconds is better reported than waited for.
    const ms = Math.min(Math.max(asked, 200 * 2 ** attempt), 3000);
    await new Promise((resolve) => setTimeout(resolve, ms));
  }

  private agentFor(url: URL): http.Agent {
    const sameHost = url.host === this.endpoint;
    if (sameHost) return url.protocol === 'https:' ? this.httpsAgent : this.httpAgent;
    // Another host (a blob redirect to storage, a token realm): system CAs, its own proxy decision.
    const key = `${url.protocol}//${url.host}`;
    let agent = this.extraAgents.get(key);
    if (!agent) {
      const proxy = proxyFor(url.href, this.opts.env ?? process.env);
      agent = makeAgent(url.protocol === 'https:' ? 'https' : 'http', proxy, this.timeouts.connectMs,
        { keepAlive: true, rejectUnauthorized: this.opts.tlsVerify !== false });
      this.extraAgents.set(key, agent);
    }
    return agent;
  }

  private send(req: HttpRequest, probe: boolean): Promise<HttpResponse> {
    const url = new URL(req.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return Promise.reject(new TransportFailure('protocol', undefined, `refusing a ${url.protocol} URL`));
    }
    if (url.protocol === 'http:' && url.host === this.endpoint && !this.plainAllowed && !probe) {
      return Promise.reject(new TransportFailure('tls', undefined, 'the registry sent a plain-HTTP URL and plain HTTP is not allowed for it'));
    }
    const mod = url.protocol === 'https:' ? https : http;
    const { connectMs, idleMs } = this.timeouts;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let response: http.IncomingMessage | undefined;
      const fail = (err: TransportFailure) => {
        if (response) response.destroy(err);
        if (!settled) {
          settled = true;
          reject(err);
        }
      };
      const headers: Record<string, string> = { 'user-agent': 'berth', ...req.headers };
      if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
      else if (req.body === undefined && (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH')) headers['content-length'] = '0';
      const r = mod.request(url, { method: req.method, headers, agent: this.agentFor(url), ...(this.opts.signal && { signal: this.opts.signal }) });
      let connectTimer: NodeJS.Timeout | undefined;
      r.on('socket', (socket) => {
        const connected = () => {
          if (connectTimer) clearTimeout(connectTimer);
          r.setTimeout(idleMs);
        };
        if (socket.connecting) {
          connectTimer = setTimeout(() => {
            r.destroy(new TransportFailure('timeout', undefined, `no connection within ${connectMs} ms`));
          }, connectMs);
          // The TLS handshake after it is covered by the idle time-out.
          socket.once('connect', connected);
        } else {
          connected();
        }
      });
      r.on('timeout', () => r.destroy(new TransportFailure('timeout', undefined, `no answer for ${idleMs} ms`)));
      r.on('error', (err: NodeJS.ErrnoException) => {
        if (connectTimer) clearTimeout(connectTimer);
        if (err instanceof TransportFailure) fail(err);
        else if (err.name === 'AbortError') {
          if (response) response.destroy(err);
          if (!settled) { settled = true; reject(err); }
        } else fail(new TransportFailure(classify(err), err, describeSocketError(err)));
      });
      r.on('response', (res) => {
        if (connectTimer) clearTimeout(connectTimer);
        response = res;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
      });
      if (req.body === undefined || Buffer.isBuffer(req.body)) r.end(req.body);
      else {
        const body = req.body();
        body.on('error', (err) => r.destroy(err));
        // A request that fails mid-upload must not leave the source (a file) open.
        r.on('close', () => { if (!body.readableEnded) body.destroy(); });
        body.pipe(r);
      }
    });
  }

  /** A failure of `send` → the RegistryError callers see. */
  toRegistryError(err: unknown, reference: string): Error {
    if (!(err instanceof TransportFailure)) {
      // A body cut short by the server (reset, premature close) while it was being read.
      const e = err as NodeJS.ErrnoException;
      if (e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || /aborted/.test(e?.message ?? '')) {
        return new RegistryError('unreachable', this.registry, reference, 'the connection broke during the transfer',
          'try again; the registry or the network dropped the connection', { cause: err });
      }
      return err as Error;
    }
    const where = this.registry;
    switch (err.reason) {
      case 'timeout':
        return new RegistryError('timeout', where, reference, `the registry did not answer: ${err.message}`,
          'check that the registry is up and reachable; a proxy from HTTPS_PROXY may be in the way', { cause: err });
      case 'tls': {
        const dirs = this.opts.config.certsDirs;
        const hint = `trust the registry's CA by putting it in ${dirs[0] ?? '/etc/berth/certs.d'}/${this.registry}/ca.crt, `
          + 'or pass --tls-verify=false (or list the registry under "insecure-registries") if you trust the network';
        return new RegistryError('tls', where, reference, `TLS failed: ${err.message}`, hint, { cause: err });
      }
      case 'unreachable':
        return new RegistryError('unreachable', where, reference, `cannot reach the registry: ${err.message}`,
          'check the registry address and that it is running', { cause: err });
      default:
        return new RegistryError(err.reason, where, reference, err.message, 'the registry broke the protocol; try again or report it', { cause: err });
    }
  }

  /** Reads a whole body, refusing one over `cap` bytes (by Content-Length, or as it arrives). */
  async readBody(res: HttpResponse, cap: number, reference: string, what: string): Promise<Buffer> {
    const tooBig = () => new RegistryError('protocol', this.registry, reference, `${what} is larger than ${cap / MiB} MiB`,
      'the registry sent more than any valid answer holds; check the registry', { status: res.status });
    const length = Number(res.headers['content-length']);
    if (Number.isFinite(length) && length > cap) {
      res.body.destroy();
      throw tooBig();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > cap) {
          res.body.destroy();
          throw tooBig();
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      throw this.toRegistryError(err, reference);
    }
    return Buffer.concat(chunks);
  }

  /** The certs.d files read for this registry (for messages). */
  get trustedFiles(): readonly string[] {
    return this.certFiles;
  }
}

function classify(err: NodeJS.ErrnoException): RegistryFailure {
  if (isTlsError(err)) return 'tls';
  if (err.code !== undefined && (UNREACHABLE_CODES.has(err.code) || RESET_CODES.has(err.code))) return 'unreachable';
  if (/socket hang up/i.test(err.message)) return 'unreachable';
  return 'unreachable';
}

function describeSocketError(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused';
  if (err.code === 'ECONNRESET') return 'connection reset';
  if (err.code === 'ENOTFOUND') return 'host not found';
  return err.code ? `${err.code}: ${err.message}` : err.message;
}
