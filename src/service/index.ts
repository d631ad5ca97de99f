/**
 * `berth system service`: the Docker Engine API over a socket, served from the same Engine the CLI uses.
 * Berth stays daemonless: the service runs only while the user keeps it (and exits after `idleSeconds`
 * without a request, as Podman's does). What containers do never depends on it: their monitors are conmon.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { AlreadyExistsError, InvalidArgumentError } from '../errors.js';
import type { EngineApi } from '../types.js';
import { ApiError } from './errors.js';
import { sendError } from './http.js';
import { Router, type Call, type ServiceState } from './router.js';
import { registerContainers } from './containers.js';
import { registerContainerData } from './containers-data.js';
import { registerExec } from './exec.js';
import { registerImages } from './images.js';
import { registerNetworks } from './networks.js';
import { registerSystem } from './system.js';
import { registerVolumes } from './volumes.js';
import { compareVersions, MIN_API_VERSION, splitVersion, API_VERSION } from './versions.js';

export interface ServiceOptions {
  /** `unix:///path` or `tcp://127.0.0.1:PORT` */
  uris: string[];
  /** exit after this long without a request in flight; 0: never */
  idleSeconds: number;
  /** the group given the socket (mode 0660); default `berth` when /etc/group has it */
  group?: string;
  /**
   * TLS on the tcp:// addresses, as dockerd's --tls/--tlsverify: the server's certificate and key, and with
   * `verify` the CA whose signature every client certificate must carry. Beyond loopback, `verify` is required.
   */
  tls?: { verify: boolean; ca?: string; cert: string; key: string };
  /** called for each request (tests, debugging): method, path, status */
  onRequest?: (line: string) => void;
}

export interface RunningService {
  /** where it listens, as URIs */
  readonly uris: string[];
  /** resolves when the service stopped (idle time-out or close) */
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

/** The routes of every endpoint group, in the order they are tried. */
export function apiRouter(): Router {
  const r = new Router();
  registerSystem(r);
  registerContainers(r);
  registerContainerData(r);
  registerExec(r);
  registerImages(r);
  registerNetworks(r);
  registerVolumes(r);
  // Swarm is Docker's orchestrator; Berth has none, and says so as a daemon outside a swarm does.
  for (const p of ['/swarm', '/swarm/{rest*}', '/services', '/services/{rest*}', '/nodes', '/nodes/{rest*}', '/tasks', '/tasks/{rest*}', '/secrets', '/secrets/{rest*}', '/configs', '/configs/{rest*}']) {
    for (const m of ['GET', 'POST', 'DELETE']) {
      r.add(m, p, async () => { throw new ApiError(503, 'This node is not a swarm manager. Berth has no swarm mode.'); });
    }
  }
  return r;
}

export async function serve(engine: EngineApi, opts: ServiceOptions): Promise<RunningService> {
  if (!opts.uris.length) throw new InvalidArgumentError('URI', 'no address to listen on');
  const router = apiRouter();
  const state: ServiceState = { shared: new Map() };
  let inFlight = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let close!: () => Promise<void>;
  const armIdle = () => {
    clearTimeout(idleTimer);
    if (opts.idleSeconds > 0 && inFlight === 0) idleTimer = setTimeout(() => void close(), opts.idleSeconds * 1000);
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse | undefined, upgraded?: { socket: Duplex; head: Buffer }) => {
    inFlight++;
    clearTimeout(idleTimer);
    const gone = new AbortController();
    const conn = res ?? upgraded!.socket;
    conn.on('close', () => gone.abort(new Error('the client went away')));
    let status = 0;
    try {
      const url = new URL(req.url ?? '/', 'http://berth');
      const { version, path: p } = splitVersion(url.pathname);
      if (compareVersions(version, API_VERSION) > 0) throw new ApiError(400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
      if (compareVersions(version, MIN_API_VERSION) < 0) throw new ApiError(400, `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
      const { handler, params } = router.match(req.method ?? 'GET', p);
      const call: Call = { req, res, upgraded, engine, params, query: url.searchParams, version, signal: gone.signal, state };
      await handler(call);
      status = res?.statusCode ?? 101;
    } catch (err) {
      if (res) {
        sendError(res, err);
        status = res.statusCode;
      } else {
        const body = JSON.stringify({ message: (err as Error).message });
        upgraded!.socket.end(`HTTP/1.1 ${err instanceof ApiError ? err.status : 500} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
    } finally {
      opts.onRequest?.(`${req.method} ${req.url} ${status}`);
      inFlight--;
      armIdle();
    }
  };

  // Hijacked connections leave the servers' books: closing the service must end them itself.
  const hijacked = new Set<Duplex>();
  // One server per address (a server listens once): the same routes and state behind each.
  const secure = opts.tls && serverTls(opts.tls);
  const makeServer = (uri: string) => {
    const handler = (req: IncomingMessage, res: ServerResponse) => void dispatch(req, res);
    const server = secure && uri.startsWith('tcp://') ? https.createServer({ ...secure, keepAliveTimeout: 5000 }, handler) : http.createServer({ keepAliveTimeout: 5000 }, handler);
    server.on('upgrade', (req, socket, head) => {
      hijacked.add(socket);
      socket.on('close', () => hijacked.delete(socket));
      void dispatch(req, undefined, { socket, head });
    });
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
    return server;
  };

  const servers: http.Server[] = [];
  // Checked before anything is made: a group that does not exist is the user's mistake, not a half service.
  if (opts.group !== undefined && groupId(opts.group) === undefined) throw new InvalidArgumentError('--group', `no group "${opts.group}" in /etc/group`, 'give a group that exists, or leave --group out (root and the berth group)');
  const bound: string[] = [];
  const socketFiles: string[] = [];
  try {
    for (const uri of opts.uris) {
      const server = makeServer(uri);
      servers.push(server);
      bound.push(await listen(server, uri, opts.group, socketFiles, opts.tls?.verify));
    }
  } catch (err) {
    for (const server of servers) server.close();
    await Promise.all(socketFiles.map((f) => fsp.rm(f, { force: true })));
    throw err;
  }
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
  let closing: Promise<void> | undefined;
  close = () => {
    closing ??= (async () => {
      clearTimeout(idleTimer);
      const stopped = servers.map((server) => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }));
      // A hijacked socket still counts for its server's close: ended here, or the close would wait for it.
      for (const s of hijacked) s.destroy();
      await Promise.all(stopped);
      await Promise.all(socketFiles.map((f) => fsp.rm(f, { force: true })));
      resolveClosed();
    })();
    return closing;
  };
  armIdle();
  return { uris: bound, closed, close };
}

/** Listens on one URI; a unix socket is made 0660, root and `group`, after a stale one is cleared. */
async function listen(server: http.Server, uri: string, group: string | undefined, socketFiles: string[], verified?: boolean): Promise<string> {
  const m = /^(unix|tcp):\/\/(.+)$/.exec(uri);
  if (!m) throw new InvalidArgumentError('URI', `"${uri}" is not unix:///PATH or tcp://127.0.0.1:PORT`);
  if (m[1] === 'tcp') {
    const t = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):(\d{1,5})$/.exec(m[2]!);
    if (!t) throw new InvalidArgumentError('URI', `"${uri}" is not tcp://ADDRESS:PORT`, 'give an IP address and a port, e.g. tcp://127.0.0.1:2376');
    const host = t[1] === 'localhost' ? '127.0.0.1' : t[1]!.replace(/^\[|\]$/g, '');
    if (!net.isIP(host)) throw new InvalidArgumentError('URI', `"${t[1]}" in ${uri} is not an IP address`, 'give an IP address, e.g. tcp://127.0.0.1:2376');
    const loopback = host === '::1' || host.startsWith('127.');
    // The Engine API is root on this host: beyond loopback only clients whose certificates the CA signed.
    if (!loopback && !verified) {
      throw new InvalidArgumentError('URI', `${uri}: beyond loopback the Engine API is served only with --tlsverify (client certificates signed by --tlscacert)`,
        'add --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY, or serve tcp://127.0.0.1:PORT, a unix socket, or use ssh://');
    }
    if (server instanceof https.Server) refusePlainHttp(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(t[2]), host, () => { server.off('error', reject); resolve(); });
    });
    const addr = server.address() as net.AddressInfo;
    return `tcp://${net.isIPv6(host) ? `[${host}]` : host}:${addr.port}`;
  }
  const file = path.resolve(m[2]!);
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  const there = await fsp.lstat(file).catch(() => undefined);
  if (there) {
    if (!there.isSocket()) throw new InvalidArgumentError('URI', `${file} exists and is not a socket`, 'give the path of a socket to create, or remove that file yourself');
    if (await answers(file)) throw new AlreadyExistsError('file', file, 'a service (or a Docker daemon) already listens there; stop it, or give another URI');
    // A socket nobody answers on: left by a service that was killed.
    await fsp.rm(file, { force: true });
  }
  // Listened on under a mode that admits no one, then opened to root and the group: never world-writable.
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => { server.off('error', reject); resolve(); });
    });
  } finally {
    process.umask(old);
  }
  socketFiles.push(file);
  const gid = groupId(group ?? 'berth');
  await fsp.chown(file, 0, gid ?? 0);
  await fsp.chmod(file, 0o660);
  return `unix://${file}`;
}

/** The server's material read once, before anything listens: a missing file is the user's, named. */
function serverTls(o: NonNullable<ServiceOptions['tls']>): https.ServerOptions {
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new InvalidArgumentError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'give the PEM files of the server\'s certificate, its key and the CA of the clients');
    }
  };
  if (o.verify && !o.ca) throw new InvalidArgumentError('--tlscacert', 'is required with --tlsverify: it is the CA that signs the clients\' certificates', 'give --tlscacert CA.pem');
  return {
    cert: read('--tlscert', o.cert), key: read('--tlskey', o.key), ...(o.ca ? { ca: read('--tlscacert', o.ca) } : {}),
    requestCert: o.verify, rejectUnauthorized: o.verify,
  };
}

/**
 * A TLS connection opens with a handshake record (0x16); anything else is a client speaking plain HTTP,
 * answered as Go's server (and so dockerd) answers it, in words the client shows, instead of a reset.
 */
function refusePlainHttp(server: https.Server): void {
  const listeners = server.listeners('connection') as ((s: Duplex) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    socket.once('data', (first: Buffer) => {
      if (first[0] === 0x16) {
        // The byte read cannot go back into a socket whose handle TLS takes over: TLS reads a relay instead.
        const relay = new Duplex({
          read: () => void socket.resume(),
          write: (chunk: Buffer, enc, done) => void socket.write(chunk, enc, done),
          final: (done) => void socket.end(done),
          // destroySoon: a refusal's alert, written just before, still reaches the client.
          destroy: (err, done) => { socket.destroySoon(); done(err); },
        });
        socket.on('data', (d: Buffer) => { if (!relay.push(d)) socket.pause(); });
        socket.on('end', () => relay.push(null));
        socket.on('close', () => relay.destroy());
        relay.push(first);
        for (const l of listeners) l.call(server, relay);
        return;
      }
      const body = JSON.stringify({ message: 'Client sent an HTTP request to an HTTPS server.' });
      socket.end(`HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
    socket.on('error', () => { /* a client that went away before its first byte */ });
  });
}

/** Whether something accepts connections on the unix socket `file` (a live service, or a Docker daemon). */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function groupId(name: string): number | undefined {
  try {
    const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === name);
    return line ? Number(line.split(':')[2]) : undefined;
  } catch {
    return undefined;
  }
}

