/**
 * A real registry for tests: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1:PORT, with a
 * config and storage of its own in a temp folder, stopped by its PID. Modes: plain HTTP, TLS (a CA and a
 * server certificate made here with openssl), htpasswd basic auth, and token auth with a small token
 * server in the test process (RS256 JWTs whose `x5c` header carries a certificate the registry trusts).
 *
 * Each test file passes its own port (never 5000): files run in parallel.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export interface RegistryUser {
  user: string;
  password: string;
}

export interface TokenAuthOptions {
  /** port of the token server (also 127.0.0.1) */
  port: number;
  /** users, each with the actions it is granted on every repository */
  users: (RegistryUser & { actions: ('pull' | 'push')[] })[];
  /** actions granted without credentials (default none) */
  anonymous?: ('pull' | 'push')[];
  /** the field the token is sent in (default `token`; Docker Hub sends both) */
  field?: 'token' | 'access_token' | 'both';
}

export interface RegistryOptions {
  port: number;
  tls?: boolean;
  htpasswd?: RegistryUser[];
  token?: TokenAuthOptions;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://...` */
  url: string;
  /** the folder of everything this registry owns (config, storage, certificates) */
  dir: string;
  /** TLS: the CA that signed the server certificate */
  caFile?: string;
  /** TLS: a certs.d-style folder holding `127.0.0.1:PORT/ca.crt` */
  certsDir?: string;
  /** token auth: the scopes asked for, one entry per token request (`repository:NAME:pull,push`) */
  tokenRequests: string[];
  /** a token for `scope`, as the token server would grant it to `user` (for helpers that push) */
  mintToken?(user: string | undefined, scope: string): string;
  stop(): Promise<void>;
}

const SERVICE = 'berth-test-registry';
const ISSUER = 'berth-test-token-issuer';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** A CA and a server certificate for 127.0.0.1 and localhost, signed by it. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=berth test CA'], dir);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'server.ext', '-out', 'server.crt'], dir);
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Starts the token server of token auth; returns its closer and a minting function. */
async function startTokenServer(dir: string, opts: TokenAuthOptions, requests: string[]) {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', 'token.key', '-out', 'token.crt',
    '-subj', '/CN=berth test token issuer'], dir);
  const key = createPrivateKey(await readFile(path.join(dir, 'token.key')));
  const der = new X509Certificate(await readFile(path.join(dir, 'token.crt'))).raw;

  const granted = (user: string | undefined): ('pull' | 'push')[] =>
    user === undefined ? opts.anonymous ?? [] : opts.users.find((u) => u.user === user)?.actions ?? [];

  const mint = (user: string | undefined, scope: string): string => {
    const access = scope.split(' ').filter(Boolean).map((s) => {
      const [type, name, actions] = s.split(':') as [string, string, string];
      return { type, name, actions: actions.split(',').filter((a) => (granted(user) as string[]).includes(a)) };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] }));
    const claims = b64url(JSON.stringify({ iss: ISSUER, sub: user ?? '', aud: SERVICE, exp: now + 300, nbf: now - 60, iat: now,
      jti: createHash('sha256').update(`${now}${Math.random()}`).digest('hex').slice(0, 16), access }));
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), key);
    return `${header}.${claims}.${b64url(signature)}`;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scope = url.searchParams.getAll('scope').join(' ');
    requests.push(scope);
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      const known = opts.users.find((x) => x.user === u);
      if (!known || known.password !== p.join(':')) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      user = u;
    }
    const token = mint(user, scope);
    const field = opts.field ?? 'token';
    const body = { ...(field !== 'access_token' && { token }), ...(field !== 'token' && { access_token: token }), expires_in: 300 };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', resolve);
  });
  return {
    rootCert: path.join(dir, 'token.crt'),
    mint,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Starts a registry and waits until it answers; throws (after cleaning up) when it does not start. */
export async function startRegistry(opts: RegistryOptions): Promise<TestRegistry> {
  if (opts.port === 5000) throw new Error('test registries never use port 5000');
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-registry-'));
  const host = `127.0.0.1:${opts.port}`;
  const tokenRequests: string[] = [];
  let proc: ChildProcess | undefined;
  let token: Awaited<ReturnType<typeof startTokenServer>> | undefined;
  const stop = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc!.once('exit', resolve));
      process.kill(proc.pid!, 'SIGTERM');
      const timer = setTimeout(() => { try { process.kill(proc!.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
      await exited;
      clearTimeout(timer);
    }
    await token?.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const lines = [
      'version: 0.1',
      'log:', '  level: error', '  accesslog:', '    disabled: true',
      'storage:', `  filesystem:`, `    rootdirectory: ${path.join(dir, 'data')}`, '  delete:', '    enabled: true',
      'http:', `  addr: ${host}`, '  secret: berth-test-secret',
    ];
    let caFile: string | undefined;
    let certsDir: string | undefined;
    if (opts.tls) {
      const certs = await makeCertificates(dir);
      lines.push('  tls:', `    certificate: ${certs.cert}`, `    key: ${certs.key}`);
      caFile = certs.ca;
      certsDir = path.join(dir, 'certs.d');
      await mkdir(path.join(certsDir, host), { recursive: true });
      await writeFile(path.join(certsDir, host, 'ca.crt'), await readFile(certs.ca));
    }
    if (opts.htpasswd && opts.token) throw new Error('choose htpasswd or token auth, not both');
    if (opts.htpasswd) {
      const entries = opts.htpasswd.map(({ user, password }) =>
        execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8', timeout: 30_000 }).trim());
      await writeFile(path.join(dir, 'htpasswd'), entries.join('\n') + '\n');
      lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${path.join(dir, 'htpasswd')}`);
    }
    if (opts.token) {
      token = await startTokenServer(dir, opts.token, tokenRequests);
      lines.push('auth:', '  token:', `    realm: http://127.0.0.1:${opts.token.port}/token`, `    service: ${SERVICE}`,
        `    issuer: ${ISSUER}`, `    rootcertbundle: ${token.rootCert}`);
    }
    const config = path.join(dir, 'config.yml');
    await writeFile(config, lines.join('\n') + '\n');
    let stderr = '';
    proc = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString(); });
    const url = `${opts.tls ? 'https' : 'http'}://${host}`;
    const ca = caFile ? await readFile(caFile) : undefined;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited (${proc.exitCode}): ${stderr}`);
      if (await answers(url, ca)) break;
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { host, url, dir, caFile, certsDir, tokenRequests, stop, ...(token && { mintToken: token.mint }) };
  } catch (err) {
    await stop();
    throw err;
  }
}

function answers(url: string, ca: Buffer | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(`${url}/v2/`, { timeout: 1000, ...(ca && { ca }) }, (res) => { res.resume(); resolve(true); });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------------------------------------------
// Pushing a small image without Berth, for tests that pull.

export interface PushedImage {
  manifestDigest: string;
  manifest: Buffer;
  configDigest: string;
  config: Buffer;
  layerDigests: string[];
  layers: Buffer[];
}

export interface PushImageOptions {
  /** files of each layer (path → contents); default one layer with `hello.txt` */
  layers?: Record<string, string>[];
  /** OCI (default) or Docker schema 2 media types */
  format?: 'oci' | 'docker';
  architecture?: string;
  /** `Authorization` header value, e.g. from `basicAuth` or `Bearer ${mintToken(...)}` */
  authorization?: string;
  /** the registry's CA (TLS registries) */
  ca?: string;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A gzipped tar holding `files`. */
export async function makeLayer(files: Record<string, string>): Promise<{ gz: Buffer; diffId: string }> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  return { gz: gzipSync(raw), diffId: sha256(raw) };
}

/** Uploads the blobs and manifest of a small image by plain HTTP requests, as a client other than Berth would. */
export async function pushImage(reg: Pick<TestRegistry, 'url' | 'caFile'>, repository: string, tag: string, opts: PushImageOptions = {}): Promise<PushedImage> {
  const ca = opts.ca ?? (reg.caFile ? await readFile(reg.caFile, 'utf8') : undefined);
  const built = await Promise.all((opts.layers ?? [{ 'hello.txt': 'hello from the registry\n' }]).map(makeLayer));
  const docker = opts.format === 'docker';
  const config = Buffer.from(JSON.stringify({
    architecture: opts.architecture ?? 'amd64', os: 'linux', created: '2026-01-01T00:00:00Z',
    config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: built.map((l) => l.diffId) }, history: [],
  }));
  const layers = built.map((l) => l.gz);
  for (const blob of [config, ...layers]) {
    const start = await request(reg.url, 'POST', `/v2/${repository}/blobs/uploads/`, opts.authorization, ca);
    if (start.status !== 202) throw new Error(`upload start: ${start.status} ${start.body.toString()}`);
    const loc = new URL(start.headers.location as string, reg.url);
    loc.searchParams.set('digest', sha256(blob));
    const put = await request(reg.url, 'PUT', loc.pathname + loc.search, opts.authorization, ca, blob, 'application/octet-stream');
    if (put.status !== 201) throw new Error(`upload: ${put.status} ${put.body.toString()}`);
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
  }));
  const mediaType = docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const put = await request(reg.url, 'PUT', `/v2/${repository}/manifests/${tag}`, opts.authorization, ca, manifest, mediaType);
  if (put.status !== 201) throw new Error(`manifest: ${put.status} ${put.body.toString()}`);
  return { manifestDigest: sha256(manifest), manifest, configDigest: sha256(config), config, layerDigests: layers.map(sha256), layers };
}

function request(base: string, method: string, pathname: string, authorization: string | undefined, ca: string | undefined,
  body?: Buffer, contentType?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const url = new URL(pathname, base);
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, {
      method, timeout: 10_000, ...(ca && { ca }),
      headers: { ...(authorization && { authorization }), ...(contentType && { 'content-type': contentType }), 'content-length': body?.length ?? 0 },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}
