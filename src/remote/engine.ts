/**
 * The remote implementation of EngineApi: each call is a request to a Berth (or Docker) Engine API at
 * `host`, through the client in client.ts. A call this client does not map yet throws RemoteError
 * `unsupported` naming it, never does something else. Streams with a terminal (run -it, exec -it), cp,
 * build, load/save, pull/push and events come in the next part (issue 19).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  ContainerInspect, ContainersApi, CreateRequest, EngineApi, ExecRequest, ImageInspect, ImagesApi, LogEntry, LogOptions, NetworksApi,
  RegistriesApi, RunOptions, StdioStreams, SystemApi, VolumesApi,
} from '../types.js';
import { RemoteError, RuntimeError } from '../errors.js';
import { parseTime } from '../util/time.js';
import { ApiClient, readAll } from './client.js';
import { createBodyOf } from './create-body.js';
import { FrameReader, LogLines, type StreamKind } from './frames.js';
import { parseHost } from './uri.js';
import { containerSummaryOf, filtersJson, imageSummariesOf, networkSummaryOf, removedImagesOf, volumeSummaryOf } from './views.js';

type Json = Record<string, any>;

/** What `system.version()` of a remote engine answers: Docker's GET /version. */
export type RemoteVersion = Json & { Version: string; ApiVersion: string; Os: string; Arch: string };

export interface RemoteSystemApi extends SystemApi {
  version(): Promise<RemoteVersion>;
  /** GET /_ping: the API version the remote speaks. */
  ping(): Promise<{ apiVersion: string }>;
}

export interface RemoteEngineApi extends EngineApi {
  /** The host URI this engine talks to. */
  readonly host: string;
  readonly system: RemoteSystemApi;
  /** Ends the idle connections (ssh sessions); the engine stays usable and dials again when called. */
  close(): void;
}

const seg = encodeURIComponent;

function unsupported(host: string, method: string): RemoteError {
  return new RemoteError('unsupported', host, `"${method}" is not supported on a remote host yet`,
    `run it on ${host} itself, or drop -H/BERTH_HOST/--context to use the local engine`);
}

/** Methods of `group` the remote client does not map: each throws naming itself. Curried for inference of K. */
function stubs<T>() {
  return <K extends keyof T & string>(host: string, group: string, names: readonly K[]): Pick<T, K> =>
    Object.fromEntries(names.map((n) => [n, () => { throw unsupported(host, `${group}.${n}`); }])) as unknown as Pick<T, K>;
}

/** Docker's since/until: unix seconds, from Berth's RFC 3339, unix seconds or relative forms. */
function unixTime(text: string | undefined, field: string): string | undefined {
  const ms = parseTime(text, field);
  return ms === undefined ? undefined : (ms / 1000).toFixed(3);
}

function ended(s: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed || s.readableEnded) return resolve();
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', () => resolve());
  });
}

/** The hijacked stream's frames to the caller's stdout/stderr; stdin, when given, the other way. */
function pipeStreams(conn: { socket: Duplex; head: Buffer }, tty: boolean, io: StdioStreams): Promise<void> {
  const reader = new FrameReader(tty, (kind: StreamKind, payload) => (kind === 'stdout' ? io.stdout : io.stderr)?.write(payload));
  if (conn.head.length) reader.push(conn.head);
  conn.socket.on('data', (chunk: Buffer) => reader.push(chunk));
  if (io.stdin) {
    io.stdin.on('data', (chunk: Buffer) => conn.socket.write(chunk));
    // Half-close: the container sees the end of its stdin; its output still comes back.
    io.stdin.once('end', () => conn.socket.end());
  }
  return ended(conn.socket);
}

export class RemoteEngine implements RemoteEngineApi {
  readonly host: string;
  readonly containers: ContainersApi;
  readonly images: ImagesApi;
  readonly networks: NetworksApi;
  readonly volumes: VolumesApi;
  readonly system: RemoteSystemApi;
  readonly registries: RegistriesApi;
  private readonly client: ApiClient;

  constructor(host: string, env: NodeJS.ProcessEnv = process.env) {
    this.client = new ApiClient(parseHost(host), env);
    this.host = host;
    const c = this.client;
    const self = this;

    this.containers = {
      create: (req) => self.create(req),
      async start(ref) {
        await c.call('POST', `/containers/${seg(ref)}/start`, { kind: 'container', ref, command: ref });
      },
      run: (req, opts) => self.runContainer(req, opts),
      async stop(ref, opts = {}) {
        await c.call('POST', `/containers/${seg(ref)}/stop`, { kind: 'container', ref, query: { t: opts.timeout, signal: opts.signal } });
      },
      async kill(ref, signal) {
        await c.call('POST', `/containers/${seg(ref)}/kill`, { kind: 'container', ref, query: { signal } });
      },
      async remove(ref, opts = {}) {
        await c.call('DELETE', `/containers/${seg(ref)}`, { kind: 'container', ref, query: { force: opts.force || undefined, v: opts.volumes || undefined } });
      },
      async list(opts = {}) {
        const rows = await c.json<Json[]>('GET', '/containers/json', { query: { all: opts.all || undefined, limit: opts.last, size: opts.size || undefined, filters: filtersJson(opts.filters) } });
        return rows.map(containerSummaryOf);
      },
      inspect: (ref, opts = {}) => c.json<ContainerInspect>('GET', `/containers/${seg(ref)}/json`, { kind: 'container', ref, query: { size: opts.size || undefined } }),
      logs: (ref, opts) => self.logs(ref, opts),
      exec: (ref, req, io) => self.exec(ref, req, io),
      async wait(ref, opts = {}) {
        const res = await c.request('POST', `/containers/${seg(ref)}/wait`, { kind: 'container', ref, query: { condition: opts.condition }, signal: opts.signal });
        return self.waitAnswer(res);
      },
      ...stubs<ContainersApi>()(host, 'containers', ['restart', 'attach', 'pause', 'unpause', 'copyFrom', 'copyTo', 'diff', 'export', 'commit', 'top', 'stats', 'rename', 'update', 'statPath', 'port', 'prune', 'cleanup', 'healthcheck']),
    };

    this.images = {
      list: async (opts = {}) => imageSummariesOf(await c.json<Json[]>('GET', '/images/json', { query: { all: opts.all || undefined, filters: filtersJson(opts.filters) } })),
      inspect: (ref) => c.json<ImageInspect>('GET', `/images/${ref.split('/').map(seg).join('/')}/json`, { kind: 'image', ref }),
      remove: async (ref, opts = {}) => removedImagesOf(await c.json<Json[]>('DELETE', `/images/${ref.split('/').map(seg).join('/')}`, { kind: 'image', ref, query: { force: opts.force || undefined, noprune: opts.noPrune || undefined } })),
      ...stubs<ImagesApi>()(host, 'images', ['build', 'buildEvents', 'tag', 'prune', 'load', 'save', 'import', 'history', 'mount', 'unmount', 'ensureDefault', 'pull', 'pullEvents', 'push']),
    };

    this.networks = {
      list: async (opts = {}) => (await c.json<Json[]>('GET', '/networks', { query: { filters: filtersJson(opts.filters) } })).map(networkSummaryOf),
      ...stubs<NetworksApi>()(host, 'networks', ['create', 'inspect', 'remove', 'prune', 'connect', 'disconnect', 'reload']),
    };

    this.volumes = {
      list: async (opts = {}) => ((await c.json<{ Volumes: Json[] | null }>('GET', '/volumes', { query: { filters: filtersJson(opts.filters) } })).Volumes ?? []).map(volumeSummaryOf),
      ...stubs<VolumesApi>()(host, 'volumes', ['create', 'inspect', 'remove', 'export', 'import', 'prune', 'registerDriver']),
    };

    this.system = {
      info: () => c.json<Record<string, unknown>>('GET', '/info'),
      version: () => c.json<RemoteVersion>('GET', '/version'),
      async ping() {
        const res = await c.request('GET', '/_ping');
        res.resume();
        return { apiVersion: String(res.headers['api-version'] ?? '') };
      },
      ...stubs<SystemApi>()(host, 'system', ['prune', 'reset', 'boot', 'events']),
    };

    this.registries = stubs<RegistriesApi>()(host, 'registries', ['login', 'logout']);
  }

  /** The store paths are the remote's own: nothing here may read or write them. */
  get root(): string {
    throw unsupported(this.host, 'root');
  }

  get runroot(): string {
    throw unsupported(this.host, 'runroot');
  }

  run(req: CreateRequest, opts?: RunOptions): ReturnType<ContainersApi['run']> {
    return this.runContainer(req, opts);
  }

  close(): void {
    this.client.close();
  }

  private async create(req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
    const { name, body } = createBodyOf(req);
    const made = await this.client.json<{ Id: string; Warnings?: string[] | null }>('POST', '/containers/create', {
      body, query: { name }, kind: 'image', ref: req.image, ...(name ? { conflictIsName: name } : {}),
    });
    return { id: made.Id, warnings: made.Warnings ?? [] };
  }

  private async waitAnswer(res: IncomingMessage): Promise<number> {
    const body = await readAll(res);
    let answer: { StatusCode?: number; Error?: { Message?: string } | null };
    try {
      answer = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new RemoteError('dropped', this.host, `the wait on ${this.host} ended without its answer`, 'check the container with "berth ps -a"; run the command again', { cause: err });
    }
    if (answer.Error?.Message) throw new RuntimeError(`waiting for the container failed on ${this.host}: ${answer.Error.Message}`, 'check the container with "berth ps -a"');
    return answer.StatusCode ?? -1;
  }

  /**
   * docker run as the docker CLI does it: create, attach, wait (sent before the start, so that a --rm
   * container removed at once still answers its exit code), start; the exit code is the wait's answer.
   */
  private async runContainer(req: CreateRequest, opts: RunOptions = {}): Promise<{ id: string; exitCode?: number; detached?: boolean; warnings: string[] }> {
    const c = this.client;
    // With a terminal and stdin, run needs raw mode, resizes and detach keys over the hijacked stream.
    if (!opts.detach && req.tty && req.openStdin) throw unsupported(this.host, 'containers.run with a terminal (-it)');
    const { id, warnings } = await this.create(req);
    opts.onCreated?.(id);
    const command = req.command?.[0] ?? req.entrypoint?.[0] ?? "the image's command";
    const startIt = () => c.call('POST', `/containers/${seg(id)}/start`, { kind: 'container', ref: id, command });
    if (opts.detach) {
      await startIt();
      return { id, warnings };
    }
    const streams = req.attach ?? ['stdout', 'stderr', ...(req.openStdin ? ['stdin'] : [])];
    const io = opts.io ?? {};
    const conn = await c.upgrade(`/containers/${seg(id)}/attach`, {
      kind: 'container', ref: id,
      query: { stream: true, stdout: streams.includes('stdout'), stderr: streams.includes('stderr'), stdin: streams.includes('stdin') && !!io.stdin },
    });
    const waitAbort = new AbortController();
    const waiting = c.request('POST', `/containers/${seg(id)}/wait`, { kind: 'container', ref: id, query: { condition: req.autoRemove ? 'removed' : 'next-exit' }, signal: waitAbort.signal });
    waiting.catch(() => { /* read below, or aborted after a failed start */ });
    const output = pipeStreams(conn, req.tty === true, { ...io, ...(streams.includes('stdin') ? {} : { stdin: undefined }) });
    try {
      await startIt();
    } catch (err) {
      conn.socket.destroy();
      waitAbort.abort();
      // As the local engine: a --rm container that could not start is not left behind.
      if (req.autoRemove) await c.call('DELETE', `/containers/${seg(id)}`, { query: { force: true } }).catch(() => undefined);
      throw err;
    }
    const [exitCode] = await Promise.all([waiting.then((res) => this.waitAnswer(res)), output]);
    return { id, exitCode, warnings };
  }

  private async *logs(ref: string, opts: LogOptions = {}): AsyncGenerator<LogEntry> {
    const c = this.client;
    const info = await c.json<ContainerInspect>('GET', `/containers/${seg(ref)}/json`, { kind: 'container', ref });
    const tty = info.Config.Tty === true;
    const res = await c.request('GET', `/containers/${seg(info.Id)}/logs`, {
      kind: 'container', ref, signal: opts.signal,
      query: {
        stdout: true, stderr: true, timestamps: true, follow: opts.follow || undefined,
        tail: opts.tail === undefined ? undefined : String(opts.tail),
        since: unixTime(opts.since, '--since'), until: unixTime(opts.until, '--until'),
      },
    });
    const lines = new LogLines(tty);
    let batch: LogEntry[] = [];
    const reader = new FrameReader(tty, (stream, payload) => batch.push(...lines.push(stream, payload)));
    try {
      for await (const chunk of res) {
        reader.push(chunk as Buffer);
        const out = batch;
        batch = [];
        yield* out;
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw new RemoteError('dropped', this.host, `the log stream from ${this.host} broke off: ${(err as Error).message}`, 'the container keeps running there; run the command again', { cause: err });
    }
    if (!res.complete && !opts.signal?.aborted) {
      throw new RemoteError('dropped', this.host, `the log stream from ${this.host} broke off`, 'the container keeps running there; run the command again');
    }
    yield* lines.end();
  }

  /**
   * Docker's three calls (create the instance, start it, inspect it for the exit code) on one connection:
   * over ssh each connection is its own service, which alone knows the instance. Without stdin the start
   * is a plain answer whose body is the stream, and the connection serves the inspect after it.
   */
  private async exec(ref: string, req: ExecRequest, io: StdioStreams = {}): Promise<{ exitCode?: number; execId: string }> {
    if (req.tty) throw unsupported(this.host, 'containers.exec with a terminal (-t)');
    const stdin = req.interactive && io.stdin ? io.stdin : undefined;
    if (stdin && this.client.target.kind === 'ssh') throw unsupported(this.host, 'containers.exec with stdin (-i) over ssh');
    const s = this.client.session();
    try {
      const made = await s.json<{ Id: string }>('POST', `/containers/${seg(ref)}/exec`, {
        kind: 'container', ref,
        body: {
          Cmd: req.command, AttachStdin: !!stdin, AttachStdout: !req.detach, AttachStderr: !req.detach, Tty: false,
          Env: req.env, User: req.user, WorkingDir: req.workdir, Privileged: req.privileged,
        },
      });
      const start = { Detach: !!req.detach, Tty: false };
      const subject = { kind: 'exec' as const, ref: made.Id, command: req.command[0] };
      if (req.detach) {
        await s.call('POST', `/exec/${made.Id}/start`, { ...subject, body: start });
        return { execId: made.Id };
      }
      if (stdin) {
        await pipeStreams(await s.upgrade(`/exec/${made.Id}/start`, { ...subject, body: start }), false, { ...io, stdin });
      } else {
        const res = await s.request('POST', `/exec/${made.Id}/start`, { ...subject, body: start });
        const reader = new FrameReader(false, (kind, payload) => (kind === 'stdout' ? io.stdout : io.stderr)?.write(payload));
        for await (const chunk of res) reader.push(chunk as Buffer);
      }
      const inspected = await s.json<{ ExitCode: number | null }>('GET', `/exec/${made.Id}/json`, subject);
      return { execId: made.Id, exitCode: inspected.ExitCode ?? undefined };
    } finally {
      s.close();
    }
  }
}

