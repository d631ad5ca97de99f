/**
 * A hostile registry for tests: a Node HTTP server on 127.0.0.1, in the test process, that speaks the
 * distribution API (Docker Registry HTTP API v2: manifests, blobs with ranges and redirects, uploads,
 * mounts, tags, Basic and Bearer auth with a token endpoint) over images built in the test from real tar
 * data, and that can be told to misbehave per request (`fake.misbehave(rule)`): wrong bytes, wrong sizes,
 * a cut or stalled connection, an oversized body, a lying Docker-Content-Digest, a status code, no answer.
 *
 * It serves what it is given and checks little of it (that is the client's job): a test can hand it a
 * manifest of any media type, a config the image spec refuses, or a layer tar that climbs out with `../`.
 * Every request is logged (`fake.requests`) so a test can see retries, ranges and the scopes asked for.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Digest } from '../../src/ids.js';
import { MediaType } from '../../src/image/oci.js';
import type { OciContainerConfig } from '../../src/image/index.js';
import { layerTar, sha256, type LayerSpec } from '../fixtures/images.js';

// ------------------------------------------------------------------ media types

export { MediaType };

export { sha256 };

// ------------------------------------------------------------------ images to serve

/** A manifest (or index) with every blob it needs, as a registry would hold it. */
export interface RemoteImage {
  mediaType: string;
  manifest: Buffer;
  digest: Digest;
  /** config and layer blobs (for an index: every child's), by digest */
  blobs: Map<Digest, Buffer>;
  /** an index's children, stored by digest alongside it */
  children: RemoteImage[];
  /** image ID (config digest); undefined for an index */
  id?: Digest;
  /** diffIDs, bottom first; empty for an index */
  diffIds: Digest[];
  /** the uncompressed layer tars, bottom first */
  tars: Buffer[];
}

export interface RemoteImageOptions {
  /** default gzip, as registries hold layers */
  compression?: 'gzip' | 'none';
  /** Docker schema 2 media types instead of OCI's */
  format?: 'oci' | 'docker';
  config?: OciContainerConfig;
  architecture?: string;
  variant?: string;
  /** rewrites the image config before it is serialised: a config the image spec refuses, say */
  editConfig?: (config: Record<string, unknown>) => unknown;
  /** rewrites the manifest object before it is serialised */
  editManifest?: (manifest: Record<string, unknown>) => unknown;
}

export function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

const CREATED = '2020-01-01T00:00:00Z';

/**
 * An image from layer specs (test/fixtures/images.ts) or raw layer tars (a hostile tar the fixtures
 * would not write). Deterministic: the same input gives the same digests.
 */
export async function remoteImage(layers: ReadonlyArray<LayerSpec | Buffer>, opts: RemoteImageOptions = {}): Promise<RemoteImage> {
  const docker = opts.format === 'docker';
  const gzip = (opts.compression ?? 'gzip') === 'gzip';
  const blobs = new Map<Digest, Buffer>();
  const tars: Buffer[] = [];
  const descs: { mediaType: string; digest: Digest; size: number }[] = [];
  for (const l of layers) {
    const tar = Buffer.isBuffer(l) ? l : await layerTar(l);
    const blob = gzip ? gzipSync(tar) : tar;
    tars.push(tar);
    blobs.set(sha256(blob), blob);
    descs.push({
      mediaType: docker ? (gzip ? MediaType.dockerLayerGzip : 'application/vnd.docker.image.rootfs.diff.tar') : gzip ? MediaType.layerGzip : MediaType.layer,
      digest: sha256(blob), size: blob.length,
    });
  }
  const diffIds = tars.map((t) => sha256(t));
  let configObj: Record<string, unknown> = {
    created: CREATED,
    architecture: opts.architecture ?? goArch(),
    ...(opts.variant ? { variant: opts.variant } : {}),
    os: 'linux',
    config: opts.config ?? { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: tars.map((_t, i) => ({ created: CREATED, created_by: `fake registry layer ${i}` })),
  };
  if (opts.editConfig) configObj = opts.editConfig(configObj) as Record<string, unknown>;
  const config = Buffer.from(JSON.stringify(configObj));
  blobs.set(sha256(config), config);
  const mediaType = docker ? MediaType.dockerManifest : MediaType.manifest;
  let manifestObj: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: docker ? MediaType.dockerConfig : MediaType.config, digest: sha256(config), size: config.length },
    layers: descs,
  };
  if (opts.editManifest) manifestObj = opts.editManifest(manifestObj) as Record<string, unknown>;
  const manifest = Buffer.from(JSON.stringify(manifestObj));
  return { mediaType, manifest, digest: sha256(manifest), blobs, children: [], id: sha256(config), diffIds, tars };
}

/** An OCI index (or Docker manifest list) over images, each with its platform. */
export function remoteIndex(entries: ReadonlyArray<{ image: RemoteImage; platform: { os: string; architecture: string; variant?: string } }>,
  opts: { format?: 'oci' | 'docker' } = {}): RemoteImage {
  const mediaType = opts.format === 'docker' ? MediaType.dockerList : MediaType.index;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    manifests: entries.map((e) => ({ mediaType: e.image.mediaType, digest: e.image.digest, size: e.image.manifest.length, platform: e.platform })),
  }));
  const blobs = new Map<Digest, Buffer>();
  for (const e of entries) for (const [d, b] of e.image.blobs) blobs.set(d, b);
  return { mediaType, manifest, digest: sha256(manifest), blobs, children: entries.map((e) => e.image), diffIds: [], tars: [] };
}

/** Raw manifest bytes of any media type (unknown ones, oversized ones), with no blobs. */
export function rawManifest(mediaType: string, body: Buffer | string | object): RemoteImage {
  const manifest = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return { mediaType, manifest, digest: sha256(manifest), blobs: new Map(), children: [], diffIds: [], tars: [] };
}

/** A manifest of `image` padded with trailing spaces (still valid JSON, still the same image) to `size` bytes. */
export function paddedManifest(image: RemoteImage, size: number): RemoteImage {
  const manifest = Buffer.concat([image.manifest, Buffer.alloc(Math.max(0, size - image.manifest.length), 0x20)]);
  return { ...image, manifest, digest: sha256(manifest) };
}

// ------------------------------------------------------------------ misbehaviour

export type RequestKind = 'ping' | 'token' | 'manifest' | 'blob' | 'upload' | 'manifest-put' | 'tags' | 'other';

export interface LoggedRequest {
  method: string;
  path: string;
  kind: RequestKind;
  repository?: string;
  /** tag or digest of a manifest, digest of a blob */
  ref?: string;
  range?: string;
  accept?: string;
  /** the scheme only (`Basic`, `Bearer`), never the secret */
  auth?: string;
  /** what the fake did to it: a trick's kind, or 'served' */
  outcome: string;
}

/** What the fake does instead of (or to) its honest answer. */
export type Trick =
  /** answers this status with a distribution error body; `headers` added (Retry-After, WWW-Authenticate) */
  | { kind: 'status'; status: number; code?: string; headers?: Record<string, string> }
  /** a blob or manifest with one byte changed: same length, other digest */
  | { kind: 'corrupt' }
  /** a blob `by` bytes shorter (negative) or longer than it is, with an honest Content-Length */
  | { kind: 'resize'; by: number }
  /** announces the full length, sends `after` bytes of the body (counted from the range start), closes the socket */
  | { kind: 'cut'; after: number }
  /** announces the full length, sends `after` bytes, then sends nothing more and keeps the socket open */
  | { kind: 'stall'; after: number }
  /** accepts the request and never answers */
  | { kind: 'hang' }
  /** a manifest or token answer padded to `bytes`; `chunked`: without Content-Length, so only a streaming cap stops it */
  | { kind: 'oversize'; bytes: number; chunked?: boolean }
  /** a manifest whose Docker-Content-Digest header names another digest */
  | { kind: 'lie-digest' }
  /** a manifest served with this Content-Type */
  | { kind: 'content-type'; mediaType: string }
  /** a blob GET answered by a 307 to this server's own /_storage/ path, as registries on object storage do */
  | { kind: 'redirect' };

export interface Rule {
  /** which requests: a kind, or a predicate over the logged request */
  on: RequestKind | ((r: LoggedRequest) => boolean);
  /** only this blob digest or manifest reference */
  ref?: string;
  /** how many matching requests it applies to (default: all of them) */
  times?: number;
  trick: Trick;
}

// ------------------------------------------------------------------ the server

export interface FakeAuth {
  scheme: 'basic' | 'bearer';
  username: string;
  password: string;
  /** repositories this user may push to (default: every one); others get 403 DENIED on upload */
  pushable?: string[];
  /** bearer only: the token endpoint hands out pull tokens without credentials (as Docker Hub does) */
  anonymousPull?: boolean;
}

export interface FakeRegistryOptions {
  auth?: FakeAuth;
  /** a fixed port; default the first free one from 15300 (this helper's range is 15300-15349; 15350-15389 are for real registries) */
  port?: number;
}

export interface FakeRegistry {
  /** `127.0.0.1:PORT`, as a reference names it */
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly requests: LoggedRequest[];
  /** Stores `image` (and an index's children) in `repository` under `tag` and its digest. */
  put(repository: string, tag: string | undefined, image: RemoteImage): void;
  /** The manifest bytes stored under a tag or digest, as pushed. */
  manifest(repository: string, ref: string): { mediaType: string; bytes: Buffer; digest: Digest } | undefined;
  /** A blob held by the registry (any repository). */
  blob(digest: string): Buffer | undefined;
  tags(repository: string): string[];
  /** Adds a rule; rules are tried in the order added, the first that matches (and has times left) applies. */
  misbehave(rule: Rule): void;
  /** Drops every rule (the registry behaves from now on). */
  behave(): void;
  /** Forgets every stored image and blob (an empty registry). */
  clear(): void;
  /** Stops the server, destroying open and hanging connections. */
  close(): Promise<void>;
}

interface StoredManifest { mediaType: string; bytes: Buffer; digest: Digest }
interface Repo { manifests: Map<string, StoredManifest> }
interface Upload { repository: string; chunks: Buffer[]; size: number }

const FIRST_PORT = 15300;
const LAST_PORT = 15349;

function distError(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Docker-Distribution-Api-Version': 'registry/2.0', ...headers });
  res.end(body);
}

const STATUS_CODES: Record<number, string> = { 400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'NAME_UNKNOWN', 429: 'TOOMANYREQUESTS' };

export async function startFakeRegistry(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const repos = new Map<string, Repo>();
  const blobs = new Map<string, Buffer>();
  const uploads = new Map<string, Upload>();
  const tokens = new Map<string, { user?: string; scopes: Set<string> }>();
  const rules: (Rule & { left: number })[] = [];
  const requests: LoggedRequest[] = [];
  const sockets = new Set<Socket>();
  const auth = opts.auth;
  let port = 0;

  const repo = (name: string): Repo => {
    let r = repos.get(name);
    if (!r) repos.set(name, r = { manifests: new Map() });
    return r;
  };
  const put = (repository: string, tag: string | undefined, image: RemoteImage) => {
    for (const child of image.children) put(repository, undefined, child);
    for (const [d, b] of image.blobs) blobs.set(d, b);
    const m = { mediaType: image.mediaType, bytes: image.manifest, digest: image.digest };
    repo(repository).manifests.set(image.digest, m);
    if (tag) repo(repository).manifests.set(tag, m);
  };

  const pickRule = (r: LoggedRequest): Trick | undefined => {
    for (const rule of rules) {
      if (rule.left <= 0) continue;
      const kindOk = typeof rule.on === 'function' ? rule.on(r) : rule.on === r.kind;
      if (!kindOk || (rule.ref !== undefined && rule.ref !== r.ref)) continue;
      rule.left--;
      return rule.trick;
    }
    return undefined;
  };

  const challenge = (repository: string | undefined, actions: string): Record<string, string> => {
    if (!auth) return {};
    if (auth.scheme === 'basic') return { 'WWW-Authenticate': 'Basic realm="fake-registry"' };
    const scope = repository ? `,scope="repository:${repository}:${actions}"` : '';
    return { 'WWW-Authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="fake-registry"${scope}` };
  };

  const basicUser = (header: string | undefined): string | undefined | false => {
    if (!header?.startsWith('Basic ')) return undefined;
    const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
    return auth && user === auth.username && rest.join(':') === auth.password ? user : false;
  };

  /** True when the request may do `action` on `repository`; answers 401 itself otherwise. */
  const authorized = (req: http.IncomingMessage, res: http.ServerResponse, repository: string | undefined, action: 'pull' | 'push'): boolean => {
    if (!auth) return true;
    const header = req.headers.authorization;
    const wanted = action === 'push' ? 'pull,push' : 'pull';
    if (auth.scheme === 'basic') {
      if (basicUser(header)) return true;
      distError(res, 401, 'UNAUTHORIZED', 'authentication required', challenge(repository, wanted));
      return false;
    }
    const token = header?.startsWith('Bearer ') ? tokens.get(header.slice(7)) : undefined;
    if (token && (!repository || token.scopes.has(`${repository}:${action}`))) return true;
    distError(res, 401, 'UNAUTHORIZED', 'authentication required', challenge(repository, wanted));
    return false;
  };

  const mayPush = (repository: string) => !auth?.pushable || auth.pushable.includes(repository);

  const serveToken = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, trick: Trick | undefined) => {
    const user = basicUser(req.headers.authorization);
    if (user === false || (user === undefined && !auth?.anonymousPull)) {
      distError(res, 401, 'UNAUTHORIZED', 'wrong username or password');
      return;
    }
    const scopes = new Set<string>();
    for (const scope of url.searchParams.getAll('scope')) {
      const [kind, name, actions] = scope.split(':');
      if (kind !== 'repository' || !name) continue;
      for (const a of (actions ?? '').split(',')) {
        if (a === 'pull' || (a === 'push' && user && mayPush(name))) scopes.add(`${name}:${a}`);
      }
    }
    const token = randomBytes(16).toString('hex');
    tokens.set(token, { user: user || undefined, scopes });
    let body = Buffer.from(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
    if (trick?.kind === 'oversize') {
      // Valid JSON all the way: a padded field, so only the size is wrong.
      body = Buffer.from(JSON.stringify({ token, padding: 'x'.repeat(Math.max(0, trick.bytes - body.length - 20)) }));
      res.writeHead(200, { 'Content-Type': 'application/json', ...(trick.chunked ? {} : { 'Content-Length': body.length }) });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
  };

  /** Sends `body` (the part from `start`) honouring cut/stall/resize/corrupt tricks. */
  const sendBody = (req: http.IncomingMessage, res: http.ServerResponse, status: number, headers: Record<string, string | number>, body: Buffer, trick: Trick | undefined) => {
    if (trick?.kind === 'corrupt' && body.length > 0) {
      body = Buffer.from(body);
      const at = Math.floor(body.length / 2);
      body[at] = (body[at] ?? 0) ^ 0xff;
    }
    if (trick?.kind === 'resize') {
      body = trick.by < 0 ? body.subarray(0, Math.max(0, body.length + trick.by)) : Buffer.concat([body, Buffer.alloc(trick.by, 0x42)]);
    }
    res.writeHead(status, { ...headers, 'Content-Length': body.length });
    if (req.method === 'HEAD') { res.end(); return; }
    if (trick?.kind === 'cut' || trick?.kind === 'stall') {
      const part = body.subarray(0, Math.min(trick.after, body.length));
      res.write(part, () => {
        if (trick.kind === 'cut') res.socket?.destroy();
        // stall: nothing more, the socket stays open until the client gives up or the fake closes
      });
      return;
    }
    res.end(body);
  };

  const serveBlob = (req: http.IncomingMessage, res: http.ServerResponse, digest: string, trick: Trick | undefined, redirected = false) => {
    const data = blobs.get(digest);
    if (!data) { distError(res, 404, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`); return; }
    if (trick?.kind === 'redirect' && !redirected) {
      res.writeHead(307, { Location: `http://127.0.0.1:${port}/_storage/${digest}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest, 'Accept-Ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && req.method === 'GET') {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}`, 'Content-Length': 0 });
        res.end();
        return;
      }
      sendBody(req, res, 206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${data.length}` }, data.subarray(start, end + 1), trick);
      return;
    }
    sendBody(req, res, 200, headers, data, trick);
  };

  const serveManifest = (req: http.IncomingMessage, res: http.ServerResponse, repository: string, ref: string, trick: Trick | undefined) => {
    const m = repos.get(repository)?.manifests.get(ref);
    if (!m) {
      if (!repos.has(repository)) distError(res, 404, 'NAME_UNKNOWN', `repository name not known to registry: ${repository}`);
      else distError(res, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${ref}`);
      return;
    }
    let bytes = m.bytes;
    let digest: string = m.digest;
    let mediaType = m.mediaType;
    if (trick?.kind === 'oversize') {
      bytes = Buffer.concat([bytes, Buffer.alloc(Math.max(0, trick.bytes - bytes.length), 0x20)]);
      digest = sha256(bytes);
      if (trick.chunked) {
        res.writeHead(200, { 'Content-Type': mediaType, 'Docker-Content-Digest': digest });
        if (req.method === 'HEAD') { res.end(); return; }
        // In pieces, with no length announced: the client must stop reading at its cap.
        for (let off = 0; off < bytes.length; off += 64 * 1024) res.write(bytes.subarray(off, off + 64 * 1024));
        res.end();
        return;
      }
    }
    if (trick?.kind === 'lie-digest') digest = sha256(Buffer.concat([bytes, Buffer.from('lie')]));
    if (trick?.kind === 'content-type') mediaType = trick.mediaType;
    sendBody(req, res, 200, { 'Content-Type': mediaType, 'Docker-Content-Digest': digest }, bytes, trick);
  };

  const readBody = (req: http.IncomingMessage): Promise<Buffer> => new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

  const handleUpload = async (req: http.IncomingMessage, res: http.ServerResponse, repository: string, uuid: string, url: URL) => {
    const base = { 'Docker-Distribution-Api-Version': 'registry/2.0' };
    if (!mayPush(repository)) {
      await readBody(req);
      distError(res, 403, 'DENIED', `requested access to the resource is denied: ${repository}`);
      return;
    }
    if (req.method === 'POST' && !uuid) {
      const mount = url.searchParams.get('mount');
      const body = await readBody(req);
      if (mount && blobs.has(mount)) {
        res.writeHead(201, { ...base, Location: `/v2/${repository}/blobs/${mount}`, 'Docker-Content-Digest': mount, 'Content-Length': 0 });
        res.end();
        return;
      }
      const digest = url.searchParams.get('digest');
      if (digest) {
        if (sha256(body) !== digest) { distError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content'); return; }
        blobs.set(digest, body);
        res.writeHead(201, { ...base, Location: `/v2/${repository}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
        res.end();
        return;
      }
      const id = randomBytes(8).toString('hex');
      uploads.set(id, { repository, chunks: [], size: 0 });
      res.writeHead(202, { ...base, Location: `/v2/${repository}/blobs/uploads/${id}`, Range: '0-0', 'Docker-Upload-UUID': id, 'Content-Length': 0 });
      res.end();
      return;
    }
    const up = uploads.get(uuid);
    if (!up || up.repository !== repository) { await readBody(req); distError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry'); return; }
    const rangeHeaders = () => ({ ...base, Location: `/v2/${repository}/blobs/uploads/${uuid}`, Range: `0-${Math.max(0, up.size - 1)}`, 'Docker-Upload-UUID': uuid, 'Content-Length': 0 });
    if (req.method === 'GET') { res.writeHead(204, rangeHeaders()); res.end(); return; }
    if (req.method === 'DELETE') { uploads.delete(uuid); res.writeHead(204, { 'Content-Length': 0 }); res.end(); return; }
    const chunk = await readBody(req);
    const contentRange = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
    if (chunk.length && contentRange && Number(contentRange[1]) !== up.size) {
      res.writeHead(416, rangeHeaders());
      res.end();
      return;
    }
    up.chunks.push(chunk);
    up.size += chunk.length;
    if (req.method === 'PATCH') { res.writeHead(202, rangeHeaders()); res.end(); return; }
    if (req.method === 'PUT') {
      const digest = url.searchParams.get('digest') ?? '';
      const data = Buffer.concat(up.chunks);
      uploads.delete(uuid);
      if (sha256(data) !== digest) { distError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content'); return; }
      blobs.set(digest, data);
      res.writeHead(201, { ...base, Location: `/v2/${repository}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
      res.end();
      return;
    }
    distError(res, 405, 'UNSUPPORTED', `${req.method} not supported`);
  };

  const handlePutManifest = async (req: http.IncomingMessage, res: http.ServerResponse, repository: string, ref: string) => {
    const bytes = await readBody(req);
    if (!mayPush(repository)) { distError(res, 403, 'DENIED', `requested access to the resource is denied: ${repository}`); return; }
    const mediaType = String(req.headers['content-type'] ?? '');
    let parsed: { config?: { digest?: string }; layers?: { digest?: string }[]; manifests?: { digest?: string }[] };
    try { parsed = JSON.parse(bytes.toString('utf8')); } catch { distError(res, 400, 'MANIFEST_INVALID', 'manifest invalid'); return; }
    const digest = sha256(bytes);
    if (ref.startsWith('sha256:') && ref !== digest) { distError(res, 400, 'DIGEST_INVALID', 'manifest digest did not match'); return; }
    const r = repo(repository);
    const missing = [parsed.config?.digest, ...(parsed.layers ?? []).map((l) => l.digest)].filter((d): d is string => !!d && !blobs.has(d));
    const missingChildren = (parsed.manifests ?? []).map((m) => m.digest).filter((d): d is string => !!d && !r.manifests.has(d));
    if (missing.length || missingChildren.length) {
      distError(res, 400, missing.length ? 'MANIFEST_BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', `unknown: ${[...missing, ...missingChildren].join(', ')}`);
      return;
    }
    const m = { mediaType, bytes, digest };
    r.manifests.set(digest, m);
    if (!ref.startsWith('sha256:')) r.manifests.set(ref, m);
    res.writeHead(201, { Location: `/v2/${repository}/manifests/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
    res.end();
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const p = url.pathname;
    const log: LoggedRequest = {
      method: req.method ?? 'GET', path: p + url.search, kind: 'other', outcome: 'served',
      range: req.headers.range, accept: req.headers.accept, auth: req.headers.authorization?.split(' ')[0],
    };
    let m: RegExpExecArray | null;
    if (p === '/v2/' || p === '/v2') log.kind = 'ping';
    else if (p === '/token') log.kind = 'token';
    else if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(p))) { log.kind = req.method === 'PUT' ? 'manifest-put' : 'manifest'; log.repository = m[1]; log.ref = m[2]; }
    else if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(p))) { log.kind = 'upload'; log.repository = m[1]; log.ref = m[2]; }
    else if ((m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(p))) { log.kind = 'blob'; log.repository = m[1]; log.ref = m[2]; }
    else if ((m = /^\/_storage\/(sha256:[0-9a-f]{64})$/.exec(p))) { log.kind = 'blob'; log.ref = m[1]; }
    else if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(p))) { log.kind = 'tags'; log.repository = m[1]; }
    requests.push(log);

    // Redirect targets are pre-signed: no auth, as object storage behind a registry does.
    if (p.startsWith('/_storage/')) { serveBlob(req, res, log.ref!, undefined, true); return; }

    const trick = pickRule(log);
    if (trick) log.outcome = trick.kind;
    if (trick?.kind === 'hang') return;
    if (trick?.kind === 'status') {
      await readBody(req).catch(() => Buffer.alloc(0));
      distError(res, trick.status, trick.code ?? STATUS_CODES[trick.status] ?? 'UNKNOWN', `fake registry answers ${trick.status}`,
        { ...(trick.status === 401 ? challenge(log.repository, 'pull') : {}), ...trick.headers });
      return;
    }
    if (log.kind === 'token') { serveToken(req, res, url, trick); return; }
    const writing = log.kind === 'upload' || log.kind === 'manifest-put';
    if (!authorized(req, res, log.repository, writing ? 'push' : 'pull')) {
      log.outcome = 'unauthorized';
      await readBody(req).catch(() => undefined);
      return;
    }
    switch (log.kind) {
      case 'ping':
        res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-Api-Version': 'registry/2.0', 'Content-Length': 2 });
        res.end('{}');
        return;
      case 'manifest':
        if (req.method === 'GET' || req.method === 'HEAD') serveManifest(req, res, log.repository!, log.ref!, trick);
        else distError(res, 405, 'UNSUPPORTED', `${req.method} not supported`);
        return;
      case 'manifest-put': await handlePutManifest(req, res, log.repository!, log.ref!); return;
      case 'blob':
        if (req.method === 'GET' || req.method === 'HEAD') serveBlob(req, res, log.ref!, trick);
        else distError(res, 405, 'UNSUPPORTED', `${req.method} not supported`);
        return;
      case 'upload': await handleUpload(req, res, log.repository!, log.ref!, url); return;
      case 'tags': {
        const r = repos.get(log.repository!);
        if (!r) { distError(res, 404, 'NAME_UNKNOWN', `repository name not known to registry: ${log.repository}`); return; }
        const all = [...r.manifests.keys()].filter((k) => !k.startsWith('sha256:')).sort();
        const n = Number(url.searchParams.get('n') ?? 0);
        const last = url.searchParams.get('last');
        const after = last ? all.filter((t) => t > last) : all;
        const page = n > 0 ? after.slice(0, n) : after;
        const headers: Record<string, string | number> = { 'Content-Type': 'application/json' };
        if (n > 0 && after.length > n) headers.Link = `</v2/${log.repository}/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
        const body = Buffer.from(JSON.stringify({ name: log.repository, tags: page }));
        res.writeHead(200, { ...headers, 'Content-Length': body.length });
        res.end(body);
        return;
      }
      default:
        distError(res, 404, 'NOT_FOUND', `no route for ${p}`);
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) distError(res, 500, 'UNKNOWN', String(err));
      else res.destroy();
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  // Node's own time-outs would end a hanging answer for the client: the client must do that itself.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 1000;

  port = await listen(server, opts.port);
  const host = `127.0.0.1:${port}`;

  return {
    host, port, url: `http://${host}`, requests,
    put,
    manifest: (repository, ref) => repos.get(repository)?.manifests.get(ref),
    blob: (digest) => blobs.get(digest),
    tags: (repository) => [...(repos.get(repository)?.manifests.keys() ?? [])].filter((k) => !k.startsWith('sha256:')).sort(),
    misbehave: (rule) => { rules.push({ ...rule, left: rule.times ?? Infinity }); },
    behave: () => { rules.length = 0; },
    clear: () => { repos.clear(); blobs.clear(); uploads.clear(); },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Listens on `port`, or on the first free port of the helper's range (test files run side by side). */
async function listen(server: http.Server, port: number | undefined): Promise<number> {
  const candidates = port !== undefined ? [port] : rotate(FIRST_PORT, LAST_PORT);
  for (const p of candidates) {
    const ok = await new Promise<boolean>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        server.off('listening', onListening);
        if (err.code === 'EADDRINUSE' && port === undefined) resolve(false);
        else reject(err);
      };
      const onListening = () => { server.off('error', onError); resolve(true); };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(p, '127.0.0.1');
    });
    if (ok) return (server.address() as AddressInfo).port;
  }
  throw new Error(`fake registry: no free port in ${FIRST_PORT}-${LAST_PORT}`);
}

/** The range starting at a place that depends on the process, so parallel test files rarely collide. */
function rotate(first: number, last: number): number[] {
  const n = last - first + 1;
  const start = (process.pid * 13) % n;
  return Array.from({ length: n }, (_v, i) => first + ((start + i) % n));
}
