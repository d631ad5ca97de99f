/**
 * RegistrySession: the distribution API's verbs on one repository of one registry, over a Transport and
 * an Authorizer. Every answer is checked before it is returned: statuses, digests of manifests, size caps.
 */
import { PassThrough, Transform, type Readable } from 'node:stream';
import { RegistryError } from '../errors.js';
import { isDigest, type Digest } from '../ids.js';
import { sha256 } from '../image/oci.js';
import { Authorizer } from './auth.js';
import { MANIFEST_CAP, type CredentialStore, type RegistriesConfig, type RegistryCredentials, type RegistrySession, type SessionOptions } from './index.js';
import { normalizeRegistry } from './names.js';
import { MiB, Transport, type HttpRequest, type HttpResponse } from './transport.js';

/** Bodies of error answers, tag lists: read into memory, so capped. */
const SMALL_CAP = 4 * MiB;
/** Blobs up to this size go up in one PUT; larger ones stream in one PATCH, then a PUT (as Docker does). */
export const MONOLITHIC_MAX = 16 * MiB;
const MAX_REDIRECTS = 5;

export interface SessionDeps {
  config: RegistriesConfig;
  credentials: CredentialStore;
}

/**
 * Opens a session on `ref.repository` of `ref.registry`. Nothing is sent until the first call; the
 * login (`opts.credentials`, else the credential store's) is looked up here.
 */
export async function openSession(ref: { registry: string; repository: string }, opts: SessionOptions, deps: SessionDeps): Promise<RegistrySession> {
  const registry = normalizeRegistry(ref.registry);
  const creds = opts.credentials ?? await deps.credentials.get(registry);
  return new Session(registry, ref.repository, opts, deps.config, creds);
}

function mediaTypeOf(header: string | undefined): string | undefined {
  const t = header?.split(';')[0]?.trim();
  return t ? t : undefined;
}

class Session implements RegistrySession {
  readonly registry: string;
  readonly repository: string;
  private readonly transport: Transport;
  private readonly auth: Authorizer;
  private readonly scope: string;
  private ready: Promise<void> | undefined;

  constructor(registry: string, repository: string, private readonly opts: SessionOptions, config: RegistriesConfig, creds: RegistryCredentials | undefined) {
    this.registry = registry;
    this.repository = repository;
    this.transport = new Transport(registry, {
      config, tlsVerify: opts.tlsVerify, timeouts: opts.timeouts, retries: opts.retries,
      ...(opts.signal && { signal: opts.signal }), ...(opts.env && { env: opts.env }),
    });
    this.auth = new Authorizer(this.transport, creds);
    const actions = [...new Set(opts.actions)].sort((a, b) => (a === 'pull' ? -1 : b === 'pull' ? 1 : 0));
    this.scope = actions.length ? `repository:${repository}:${actions.join(',')}` : '';
  }

  close(): void {
    this.transport.close();
  }

  private get name(): string {
    return this.repository ? `${this.registry}/${this.repository}` : '';
  }

  private refName(ref: string): string {
    return isDigest(ref) ? `${this.name}@${ref}` : `${this.name}:${ref}`;
  }

  /** The first GET /v2/ of the session: the scheme, and the challenge when the registry sends one. */
  private start(): Promise<void> {
    this.ready ??= this.transport.resolveBase(this.name).then(({ ping }) => {
      if (ping) {
        this.auth.learn(ping);
        ping.body.resume();
      }
    }, (err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** Sends `req` with the session's authorization; a 401 is answered once with a fresh challenge and token. */
  private async call(req: HttpRequest, scopes: readonly string[] = [this.scope]): Promise<HttpResponse> {
    await this.start();
    const withAuth = (auth: string | undefined): HttpRequest => ({ ...req, headers: { ...req.headers, ...(auth && { authorization: auth }) } });
    const first = await this.auth.header(scopes, req.reference);
    const res = await this.transport.request(withAuth(first));
    if (res.status !== 401) return res;
    const hadAuth = first !== undefined;
    this.auth.learn(res);
    const again = await this.auth.header(scopes, req.reference, true);
    // No credentials to offer, and the same (anonymous) request already failed: nothing to retry with.
    if (again === undefined || (!hadAuth && this.auth.scheme === 'basic' && !this.auth.hasCredentials)) return res;
    res.body.resume();
    return this.transport.request(withAuth(again));
  }

  /** Follows redirects (blob storage); the Authorization header stays with the registry's own host. */
  private async follow(req: HttpRequest): Promise<HttpResponse> {
    let res = await this.call(req);
    for (let hops = 0; [301, 302, 303, 307, 308].includes(res.status); hops++) {
      res.body.resume();
      const location = res.headers.location;
      if (!location || hops >= MAX_REDIRECTS) {
        throw new RegistryError('protocol', this.registry, req.reference, location ? `more than ${MAX_REDIRECTS} redirects` : `redirect ${res.status} without a Location`,
          'the registry broke the protocol; check the registry', { status: res.status });
      }
      const next = new URL(location, res.url);
      if (next.host === res.url.host && next.protocol === res.url.protocol) res = await this.call({ ...req, url: next.href });
      else {
        const { authorization: _dropped, ...headers } = req.headers ?? {};
        res = await this.transport.request({ ...req, url: next.href, headers });
      }
    }
    return res;
  }

  /** Turns a failed answer into a RegistryError, using the registry's error codes where it sends them. */
  private async fail(res: HttpResponse, reference: string, what: string): Promise<never> {
    let codes: { code?: string; message?: string }[] = [];
    if (res.body.readable && !res.body.destroyed) {
      try {
        const body = await this.transport.readBody(res, SMALL_CAP, reference, 'an error answer');
        const parsed = JSON.parse(body.toString('utf8')) as { errors?: unknown };
        if (Array.isArray(parsed.errors)) codes = parsed.errors.filter((e): e is { code?: string; message?: string } => !!e && typeof e === 'object');
      } catch { /* not the registry's JSON: the status says enough */ }
    }
    const code = codes[0]?.code;
    const detail = codes[0]?.message && typeof codes[0].message === 'string' ? `: ${codes[0].message.slice(0, 200)}` : '';
    const status = { status: res.status };
    const login = `log in with "berth login ${this.registry}"`;
    const push = this.opts.actions.includes('push');
    switch (res.status) {
      case 401:
        if (this.auth.hasCredentials && (this.auth.grantedWithLogin || push)) {
          return this.throw('denied', reference, `requested access to the resource is denied (${what})`,
            `the login for ${this.registry} has no permission for ${this.repository}; check the repository name and your rights`, status);
        }
        return this.throw('unauthorized', reference, this.auth.hasCredentials ? 'unauthorized: incorrect username or password' : `unauthorized: ${what} requires a login`,
          this.auth.hasCredentials ? this.auth.wrongLoginHint : login, status);
      case 403:
        return this.throw('denied', reference, `requested access to the resource is denied (${what})${detail}`,
          `check that you may ${push ? 'push to' : 'pull from'} ${this.repository}; ${login} if you have not`, status);
      case 404: {
        if (code === 'NAME_UNKNOWN') {
          return this.throw('not-found', reference, `repository ${this.repository} not found`, 'check the repository name', status);
        }
        if (code === 'MANIFEST_UNKNOWN' || what === 'manifest') {
          return this.throw('not-found', reference, `manifest unknown: ${reference} not found`, 'check the tag or digest; list the tags the registry has', status);
        }
        if (code === 'BLOB_UNKNOWN' || code === 'BLOB_UPLOAD_UNKNOWN') {
          return this.throw('not-found', reference, `${code === 'BLOB_UNKNOWN' ? 'blob' : 'upload'} unknown (${what})`, 'the registry lost it; try again', status);
        }
        return this.throw('not-found', reference, `${what} not found${detail}`, 'check the name', status);
      }
      case 429:
        return this.throw('unavailable', reference, `too many requests (${what})`, 'the registry is rate-limiting; try again later', status);
      default:
        if (res.status >= 500) {
          return this.throw('unavailable', reference, `the registry answered ${res.status} to ${what}${detail}`, 'the registry failed; try again later', status);
        }
        return this.throw('protocol', reference, `the registry refused ${what}: ${res.status}${code ? ` ${code}` : ''}${detail}`,
          'check the image and the registry', status);
    }
  }

  private throw(reason: ConstructorParameters<typeof RegistryError>[0], reference: string, message: string, hint: string, options?: { status?: number }): never {
    throw new RegistryError(reason, this.registry, reference, message, hint, options);
  }

  async ping(): Promise<void> {
    const reference = '';
    this.auth.wrongLoginHint = 'check the username and password';
    await this.start();
    const header = await this.auth.header([], reference);
    let res = await this.transport.request({ method: 'GET', url: '/v2/', reference, ...(header && { headers: { authorization: header } }) });
    if (res.status === 401 && header === undefined && this.auth.hasCredentials) {
      this.auth.learn(res);
      res.body.resume();
      const again = await this.auth.header([], reference, true);
      res = await this.transport.request({ method: 'GET', url: '/v2/', reference, ...(again && { headers: { authorization: again } }) });
    }
    if (res.status === 200) {
      res.body.resume();
      return;
    }
    if (res.status === 401 && !this.auth.hasCredentials) {
      // Anonymous: a registry that wants a login for /v2/ still serves public repositories with a token.
      res.body.resume();
      return;
    }
    return this.fail(res, reference, 'the login check');
  }

  async manifest(ref: string, accept: readonly string[]): Promise<{ mediaType: string; digest: Digest; bytes: Buffer }> {
    const reference = this.refName(ref);
    const res = await this.call({ method: 'GET', url: `/v2/${this.repository}/manifests/${ref}`, headers: { accept: accept.join(', ') }, reference });
    if (res.status !== 200) return this.fail(res, reference, 'manifest');
    const bytes = await this.transport.readBody(res, MANIFEST_CAP, reference, 'the manifest');
    const digest = sha256(bytes);
    if (isDigest(ref) && ref !== digest) {
      this.throw('protocol', reference, `the registry sent a manifest whose digest is ${digest}`, 'the registry served the wrong content; check the registry');
    }
    const told = res.headers['docker-content-digest'];
    if (typeof told === 'string' && told.startsWith('sha256:') && told !== digest) {
      this.throw('protocol', reference, `the manifest's digest is ${digest} but the registry says ${told}`, 'the registry served the wrong content; check the registry');
    }
    let mediaType = mediaTypeOf(res.headers['content-type']);
    if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain' || mediaType === 'application/octet-stream') {
      try {
        const field = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
        if (typeof field === 'string') mediaType = field;
      } catch { /* the caller checks the document itself */ }
    }
    return { mediaType: mediaType ?? 'application/octet-stream', digest, bytes };
  }

  async headManifest(ref: string, accept: readonly string[]): Promise<{ digest: Digest; mediaType: string; size: number } | undefined> {
    const reference = this.refName(ref);
    const res = await this.call({ method: 'HEAD', url: `/v2/${this.repository}/manifests/${ref}`, headers: { accept: accept.join(', ') }, reference });
    res.body.resume();
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, reference, 'manifest');
    const told = res.headers['docker-content-digest'];
    const size = Number(res.headers['content-length']);
    const mediaType = mediaTypeOf(res.headers['content-type']);
    if (typeof told === 'string' && isDigest(told) && mediaType && Number.isFinite(size)) {
      if (isDigest(ref) && told !== ref) {
        this.throw('protocol', reference, `the registry reports digest ${told} for it`, 'the registry served the wrong content; check the registry');
      }
      return { digest: told, mediaType, size };
    }
    // Registries need not send the digest on HEAD: fetch and compute it.
    const m = await this.manifest(ref, accept);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  async blob(digest: Digest, opts: { offset?: number } = {}): Promise<{ stream: Readable; size: number | undefined }> {
    const reference = `${this.name}@${digest}`;
    const offset = opts.offset ?? 0;
    const res = await this.follow({ method: 'GET', url: `/v2/${this.repository}/blobs/${digest}`, reference, ...(offset > 0 && { headers: { range: `bytes=${offset}-` } }) });
    if (res.status !== 200 && res.status !== 206) return this.fail(res, reference, 'blob');
    let size: number | undefined;
    let skip = 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== offset) {
        res.body.destroy();
        this.throw('protocol', reference, `the registry answered a range request from byte ${offset} with Content-Range "${res.headers['content-range'] ?? ''}"`, 'try again; check the registry');
      }
      size = m[2] === '*' ? undefined : Number(m[2]);
    } else {
      const length = Number(res.headers['content-length']);
      size = Number.isFinite(length) && res.headers['content-length'] !== undefined ? length : undefined;
      skip = offset; // the registry ignored the Range header: drop what the caller already has
    }
    const out = skip > 0 ? skipBytes(skip) : new PassThrough();
    res.body.on('error', (err) => out.destroy(this.transport.toRegistryError(err, reference)));
    res.body.on('close', () => {
      if (!res.body.readableEnded && !out.destroyed) {
        out.destroy(new RegistryError('unreachable', this.registry, reference, 'the connection broke during the download', 'try again'));
      }
    });
    res.body.pipe(out);
    return { stream: out, size };
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    const reference = `${this.name}@${digest}`;
    const res = await this.follow({ method: 'HEAD', url: `/v2/${this.repository}/blobs/${digest}`, reference });
    res.body.resume();
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, reference, 'blob');
    const length = Number(res.headers['content-length']);
    if (!Number.isFinite(length) || res.headers['content-length'] === undefined) {
      this.throw('protocol', reference, 'the registry answered HEAD of a blob without Content-Length', 'check the registry');
    }
    return length;
  }

  async mountBlob(digest: Digest, from: string): Promise<boolean> {
    const reference = `${this.name}@${digest}`;
    const url = `/v2/${this.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const res = await this.call({ method: 'POST', url, reference }, [this.scope, `repository:${from}:pull`]);
    res.body.resume();
    if (res.status === 201) return true;
    if (res.status === 202) {
      // The registry would not mount and opened an upload instead: cancel it, the caller uploads.
      const location = res.headers.location;
      if (location) {
        const del = await this.call({ method: 'DELETE', url: new URL(location, res.url).href, reference }).catch(() => undefined);
        del?.body.resume();
      }
      return false;
    }
    return this.fail(res, reference, 'blob mount');
  }

  async uploadBlob(digest: Digest, size: number, open: () => Readable, onProgress?: (sent: number) => void): Promise<void> {
    const reference = `${this.name}@${digest}`;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.uploadOnce(digest, size, open, reference, onProgress);
      } catch (err) {
        // A connection that broke mid-upload: start over once with a new upload session.
        if (attempt === 0 && err instanceof RegistryError && err.reason === 'unreachable') continue;
        throw err;
      }
    }
  }

  private async uploadOnce(digest: Digest, size: number, open: () => Readable, reference: string, onProgress?: (sent: number) => void): Promise<void> {
    const start = await this.call({ method: 'POST', url: `/v2/${this.repository}/blobs/uploads/`, reference });
    start.body.resume();
    if (start.status !== 202) return this.fail(start, reference, 'blob upload');
    let location = this.uploadLocation(start, reference);
    const counted = () => {
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          onProgress?.(sent);
          cb(null, chunk);
        },
      });
      const src = open();
      src.on('error', (err) => counter.destroy(err));
      return src.pipe(counter);
    };
    const octet = { 'content-type': 'application/octet-stream' };
    if (size > MONOLITHIC_MAX) {
      const patch = await this.call({ method: 'PATCH', url: location.href, headers: octet, body: counted, reference });
      patch.body.resume();
      if (patch.status !== 202 && patch.status !== 204) return this.fail(patch, reference, 'blob upload');
      location = this.uploadLocation(patch, reference, location);
    }
    location.searchParams.set('digest', digest);
    const put = size > MONOLITHIC_MAX
      ? await this.call({ method: 'PUT', url: location.href, headers: octet, reference })
      : await this.call({ method: 'PUT', url: location.href, headers: { ...octet, 'content-length': String(size) }, body: counted, reference });
    put.body.resume();
    if (put.status !== 201) {
      if (put.status === 400) {
        this.throw('protocol', reference, 'the registry refused the blob: its digest or size does not match what was sent', 'the local blob may be damaged; check the image', { status: 400 });
      }
      return this.fail(put, reference, 'blob upload');
    }
    const told = put.headers['docker-content-digest'];
    if (typeof told === 'string' && told.startsWith('sha256:') && told !== digest) {
      this.throw('protocol', reference, `the registry stored the blob as ${told}`, 'check the registry');
    }
  }

  private uploadLocation(res: HttpResponse, reference: string, previous?: URL): URL {
    const location = res.headers.location;
    if (!location) {
      if (previous) return previous;
      this.throw('protocol', reference, 'the registry opened an upload without a Location', 'check the registry');
    }
    return new URL(location, res.url);
  }

  async putManifest(ref: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    const reference = this.refName(ref);
    const digest = sha256(bytes);
    const res = await this.call({ method: 'PUT', url: `/v2/${this.repository}/manifests/${ref}`, headers: { 'content-type': mediaType }, body: bytes, reference });
    res.body.resume();
    if (res.status !== 201) return this.fail(res, reference, 'manifest upload');
    const told = res.headers['docker-content-digest'];
    if (typeof told === 'string' && told.startsWith('sha256:') && told !== digest) {
      this.throw('protocol', reference, `the registry stored the manifest as ${told}, not ${digest}`, 'check the registry');
    }
    return digest;
  }

  async tags(): Promise<string[]> {
    const reference = this.name;
    const out: string[] = [];
    let url: string | undefined = `/v2/${this.repository}/tags/list`;
    for (let page = 0; url !== undefined; page++) {
      if (page >= 1000) this.throw('protocol', reference, 'the tag list has more than 1000 pages', 'check the registry');
      const res = await this.call({ method: 'GET', url, reference });
      if (res.status !== 200) return this.fail(res, reference, 'tag list');
      const body = await this.transport.readBody(res, SMALL_CAP, reference, 'a page of the tag list');
      let parsed: { tags?: unknown };
      try {
        parsed = JSON.parse(body.toString('utf8')) as { tags?: unknown };
      } catch {
        return this.throw('protocol', reference, 'the tag list is not JSON', 'check the registry');
      }
      if (Array.isArray(parsed.tags)) out.push(...parsed.tags.filter((t): t is string => typeof t === 'string'));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''));
      url = next ? new URL(next[1]!, res.url).href : undefined;
    }
    return out;
  }
}

/** Drops the first `n` bytes of a stream. */
function skipBytes(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
}
