/**
 * The remote implementation of EngineApi: each call is a request to a Berth (or Docker) Engine API at
 * `host`, through the client in client.ts. A call this client does not map yet throws RemoteError
 * `unsupported` naming it, never does something else. Streams with a terminal (run -it, exec -it), cp,
 * build, load/save, pull/push and events come in the next part (issue 19).
 */
import type { IncomingMessage } from 'node:http';
import type {
  AttachOptions, ClientTerminal, ContainerInspect, ContainerStats, ContainersApi, CreateRequest, EngineApi, ExecRequest, ImageInspect, ImagesApi, LogEntry, LogOptions, NetworksApi,
  RegistriesApi, RunOptions, StdioStreams, SystemApi, TransferEvent, VolumesApi,
} from '../types.js';
import { withCidfile } from '../container/index.js';
import { BadStateError, InvalidArgumentError, NotFoundError, RemoteError, RuntimeError } from '../errors.js';
import { parsePruneFilter } from '../util/prune-filter.js';
import { parseTime } from '../util/time.js';
import { remoteRegistries } from './auth.js';
import { ApiClient, readAll } from './client.js';
import { createBodyOf, resourcesOf, restartOf, withLocalFiles } from './create-body.js';
import { FrameReader, LogLines } from './frames.js';
import { detachKeysOf, pipeStreams } from './streams.js';
import { parseHost } from './uri.js';
import { loadTls, type TlsFiles } from './tls.js';
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
const imagePath = (ref: string) => ref.split('/').map(seg).join('/');

/** The data calls load their module (tar, build context, copy rules) only when one is made. */
const data = () => import('./data.js');

/** An async iterable whose source is made on the first iteration. */
function lazyIterable<T>(make: () => Promise<AsyncIterable<T>>): AsyncIterable<T> {
  return { async *[Symbol.asyncIterator]() { yield* await make(); } };
}

function unsupported(host: string, method: string): RemoteError {
  return new RemoteError('unsupported', host, `"${method}" is not supported on a remote host yet`,
    `run it on ${host} itself, or drop -H/BERTH_HOST/--context to use the local engine`);
}

/**
 * A verb that is local by nature: it acts on the store, mounts or processes of the host it runs on, and the
 * Engine API (Docker's too) has no endpoint for it. Never "yet": it is to be run there.
 */
function localOnly(host: string, method: string): RemoteError {
  const ssh = /^ssh:\/\/(?:[^@/]+@)?([^:/]+)/.exec(host)?.[1];
  return new RemoteError('unsupported', host, `"${method}" acts on the own store and processes of the host it runs on, and the Engine API has no call for it: it is not sent to ${host}`,
    `run it on that host: berth machine ssh NAME berth ...${ssh ? `, or ssh ${ssh} berth ...` : ', or log in there'}`);
}

/** Methods of `group` the remote client does not map: each throws naming itself (`why`: local by nature, or not yet). Curried for inference of K. */
function stubs<T>(why: (host: string, method: string) => RemoteError = unsupported) {
  return <K extends keyof T & string>(host: string, group: string, names: readonly K[]): Pick<T, K> =>
    Object.fromEntries(names.map((n) => [n, () => { throw why(host, `${group}.${n}`); }])) as unknown as Pick<T, K>;
}

/** Docker's since/until: unix seconds, from Berth's RFC 3339, unix seconds or relative forms. */
function unixTime(text: string | undefined, field: string): string | undefined {
  const ms = parseTime(text, field);
  return ms === undefined ? undefined : (ms / 1000).toFixed(3);
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

  constructor(host: string, env: NodeJS.ProcessEnv = process.env, tls?: TlsFiles) {
    const target = parseHost(host);
    if (tls && target.kind !== 'tcp') throw new InvalidArgumentError('--tls', `TLS applies to tcp:// hosts, not to ${host}`, 'drop the TLS options, or give a tcp://HOST:PORT host');
    this.client = new ApiClient(target.kind === 'tcp' && tls ? { ...target, tls: loadTls(tls) } : target, env);
    this.host = host;
    const c = this.client;
    const self = this;

    this.containers = {
      create: (req, opts) => self.create(req, undefined, opts?.onPull),
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
      attach: (ref, io, opts) => self.attach(ref, io, opts),
      async wait(ref, opts = {}) {
        const res = await c.request('POST', `/containers/${seg(ref)}/wait`, { kind: 'container', ref, query: { condition: opts.condition }, signal: opts.signal });
        return self.waitAnswer(res);
      },
      copyFrom: async (ref, src, dest, opts) => (await data()).copyFrom(c, ref, src, dest, opts),
      copyTo: async (ref, dest, src, opts) => (await data()).copyTo(c, ref, dest, src, opts),
      async restart(ref, opts = {}) {
        await c.call('POST', `/containers/${seg(ref)}/restart`, { kind: 'container', ref, query: { t: opts.timeout } });
      },
      async pause(ref) {
        await c.call('POST', `/containers/${seg(ref)}/pause`, { kind: 'container', ref });
      },
      async unpause(ref) {
        await c.call('POST', `/containers/${seg(ref)}/unpause`, { kind: 'container', ref });
      },
      async rename(ref, newName) {
        await c.call('POST', `/containers/${seg(ref)}/rename`, { kind: 'container', ref, query: { name: newName }, conflictIsName: newName });
      },
      async diff(ref) {
        const kinds = ['C', 'A', 'D'] as const;
        return ((await c.json<Json[] | null>('GET', `/containers/${seg(ref)}/changes`, { kind: 'container', ref })) ?? []).map((x) => ({ kind: kinds[x.Kind as 0 | 1 | 2], path: x.Path }));
      },
      async top(ref, psArgs = []) {
        const res = await c.json<{ Titles: string[]; Processes: string[][] }>('GET', `/containers/${seg(ref)}/top`, { kind: 'container', ref, query: { ps_args: psArgs.length ? psArgs.join(' ') : undefined } });
        return { titles: res.Titles, processes: res.Processes };
      },
      async commit(ref, opts = {}) {
        const at = opts.reference?.lastIndexOf(':') ?? -1;
        const [repo, tag] = opts.reference && at > opts.reference.lastIndexOf('/') ? [opts.reference.slice(0, at), opts.reference.slice(at + 1)] : [opts.reference, undefined];
        const res = await c.json<{ Id: string }>('POST', '/commit', {
          kind: 'container', ref, body: {},
          query: { container: ref, repo, tag, comment: opts.message, author: opts.author, changes: opts.changes, pause: opts.pause === false ? false : undefined },
        });
        return res.Id;
      },
      export: async (ref, output) => (await data()).exportTo(c, ref, output),
      async prune(opts = {}) {
        const res = await c.json<{ ContainersDeleted: string[] | null }>('POST', '/containers/prune', { query: { filters: filtersJson(opts.filters) } });
        return { deleted: res.ContainersDeleted ?? [] };
      },
      stats: (refs) => self.stats(refs),
      async update(ref, resources) {
        const { restart, ...limits } = resources;
        await c.call('POST', `/containers/${seg(ref)}/update`, { kind: 'container', ref, body: { ...resourcesOf(limits), ...(restart ? { RestartPolicy: restartOf(restart) } : {}) } });
      },
      // `docker port` reads the bindings from inspect; Berth's port() lists the configured ones (HostConfig's).
      async port(ref) {
        const info = await c.json<Json>('GET', `/containers/${seg(ref)}/json`, { kind: 'container', ref });
        return Object.entries((info.HostConfig?.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>).flatMap(([key, list]) => {
          const [port, proto] = key.split('/');
          return (list ?? []).map((b) => ({ hostIp: b.HostIp ?? '', hostPort: Number(b.HostPort), containerPort: Number(port), protocol: (proto === 'udp' ? 'udp' : 'tcp') as 'tcp' | 'udp' }));
        });
      },
      statPath: async (ref, p) => (await data()).statPath(c, ref, p),
      // cleanup is the monitor's exit hook, healthcheck run the timer's: both act on that host's processes.
      ...stubs<ContainersApi>(localOnly)(host, 'containers', ['cleanup', 'healthcheck']),
    };

    this.images = {
      list: async (opts = {}) => imageSummariesOf(await c.json<Json[]>('GET', '/images/json', { query: { all: opts.all || undefined, filters: filtersJson(opts.filters) } })),
      inspect: (ref) => c.json<ImageInspect>('GET', `/images/${ref.split('/').map(seg).join('/')}/json`, { kind: 'image', ref }),
      remove: async (ref, opts = {}) => removedImagesOf(await c.json<Json[]>('DELETE', `/images/${ref.split('/').map(seg).join('/')}`, { kind: 'image', ref, query: { force: opts.force || undefined, noprune: opts.noPrune || undefined } })),
      build: async (opts) => (await data()).build(c, opts),
      buildEvents: (opts) => lazyIterable(async () => (await data()).buildEvents(c, opts)),
      async tag(source, target) {
        const colon = target.lastIndexOf(':');
        const [repo, tag] = colon > target.lastIndexOf('/') ? [target.slice(0, colon), target.slice(colon + 1)] : [target, undefined];
        await c.call('POST', `/images/${imagePath(source)}/tag`, { kind: 'image', ref: source, query: { repo, tag } });
      },
      async prune(opts = {}) {
        const filters = [...(opts.filters ?? []), ...(opts.all ? ['dangling=false'] : [])];
        const res = await c.json<{ ImagesDeleted: Json[] | null; SpaceReclaimed: number }>('POST', '/images/prune', { query: { filters: filtersJson(filters) } });
        return { deleted: (res.ImagesDeleted ?? []).map((d) => d.Deleted ?? d.Untagged).filter(Boolean), spaceReclaimed: res.SpaceReclaimed ?? 0 };
      },
      load: async (input, opts) => (await data()).load(c, input, opts),
      save: async (refs, output, opts) => (await data()).save(c, refs, output, opts),
      pull: async (ref, opts) => (await data()).pull(c, ref, opts),
      pullEvents: (ref, opts) => lazyIterable(async () => (await data()).pullEvents(c, ref, opts)),
      push: async (ref, opts) => (await data()).push(c, ref, opts),
      history: async (ref) => (await c.json<Json[]>('GET', `/images/${imagePath(ref)}/history`, { kind: 'image', ref })).map((h) => ({
        id: h.Id, created: new Date(h.Created * 1000).toISOString(), createdBy: h.CreatedBy ?? '', size: h.Size ?? 0, comment: h.Comment ?? '',
        // The API has no such field; Docker's own history marks a layerless step by its size, as here.
        emptyLayer: !h.Size,
      })),
      import: async (input, opts) => (await data()).importImage(c, input, opts),
      // A mount is made in that host's mount table; the default image is made from that host's busybox.
      ...stubs<ImagesApi>(localOnly)(host, 'images', ['mount', 'unmount', 'ensureDefault']),
    };

    this.networks = {
      list: async (opts = {}) => (await c.json<Json[]>('GET', '/networks', { query: { filters: filtersJson(opts.filters) } })).map(networkSummaryOf),
      async create(req) {
        if (req.allowHostOverlap) throw new InvalidArgumentError('--allow-host-overlap', 'is not sent to a remote host yet: the Engine API has no such field', 'create the network on that host itself');
        const config = (req.subnets ?? []).map((subnet, i) => ({ Subnet: subnet, Gateway: req.gateways?.[i], IPRange: req.ipRanges?.[i] }));
        const made = await c.json<{ Id: string }>('POST', '/networks/create', {
          conflictIsName: req.name, conflictKind: 'network',
          body: {
            Name: req.name, Driver: req.driver, EnableIPv6: req.ipv6, Internal: req.internal, Attachable: req.attachable,
            Options: req.options, Labels: req.labels, ...(config.length ? { IPAM: { Driver: 'default', Config: config } } : {}),
          },
        });
        return { id: made.Id };
      },
      inspect: async (ref) => networkSummaryOf(await c.json<Json>('GET', `/networks/${seg(ref)}`, { kind: 'network', ref })),
      async remove(ref) {
        await c.call('DELETE', `/networks/${seg(ref)}`, { kind: 'network', ref });
      },
      async prune(opts = {}) {
        const res = await c.json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', { query: { filters: filtersJson(opts.filters) } });
        return { deleted: res.NetworksDeleted ?? [] };
      },
      async connect(network, container, opts = {}) {
        const ipam = opts.ip || opts.ip6 ? { IPv4Address: opts.ip, IPv6Address: opts.ip6 } : undefined;
        await c.call('POST', `/networks/${seg(network)}/connect`, { kind: 'network', ref: network, body: { Container: container, EndpointConfig: { Aliases: opts.aliases, IPAMConfig: ipam } } });
      },
      async disconnect(network, container, opts = {}) {
        await c.call('POST', `/networks/${seg(network)}/disconnect`, { kind: 'network', ref: network, body: { Container: container, Force: !!opts.force } });
      },
      // reload re-applies iptables rules and bridges in that host's kernel.
      ...stubs<NetworksApi>(localOnly)(host, 'networks', ['reload']),
    };

    this.volumes = {
      list: async (opts = {}) => ((await c.json<{ Volumes: Json[] | null }>('GET', '/volumes', { query: { filters: filtersJson(opts.filters) } })).Volumes ?? []).map(volumeSummaryOf),
      create: async (req = {}) => volumeSummaryOf(await c.json<Json>('POST', '/volumes/create', { body: { Name: req.name, Driver: req.driver, DriverOpts: req.options, Labels: req.labels } })),
      inspect: async (name) => volumeSummaryOf(await c.json<Json>('GET', `/volumes/${seg(name)}`, { kind: 'volume', ref: name })),
      async remove(name, opts = {}) {
        await c.call('DELETE', `/volumes/${seg(name)}`, { kind: 'volume', ref: name, query: { force: opts.force || undefined } });
      },
      async prune(opts = {}) {
        const filters = [...(opts.filters ?? []), ...(opts.all ? ['all=true'] : [])];
        const res = await c.json<{ VolumesDeleted: string[] | null }>('POST', '/volumes/prune', { query: { filters: filtersJson(filters) } });
        return { deleted: res.VolumesDeleted ?? [] };
      },
      // Docker's API has no volume export/import; a driver is code registered in the process that runs it.
      ...stubs<VolumesApi>(localOnly)(host, 'volumes', ['export', 'import', 'registerDriver']),
    };

    this.system = {
      info: () => c.json<Record<string, unknown>>('GET', '/info'),
      version: () => c.json<RemoteVersion>('GET', '/version'),
      async ping() {
        const res = await c.request('GET', '/_ping');
        res.resume();
        return { apiVersion: String(res.headers['api-version'] ?? '') };
      },
      events: (opts = {}) => lazyIterable(async () => (await data()).events(c, {
        since: unixTime(opts.since, '--since'), until: unixTime(opts.until, '--until'), filters: filtersJson(opts.filters),
      }, opts.signal)),
      // As the docker CLI does it: each prune endpoint in turn, the filters checked here before the first.
      async prune(opts = {}) {
        parsePruneFilter(opts.filters);
        const filters = opts.filters ?? [];
        const containers = await self.containers.prune({ filters });
        const networks = await self.networks.prune({ filters });
        const volumes = opts.volumes ? await self.volumes.prune({ filters }) : undefined;
        const images = await self.images.prune({ all: opts.all, filters });
        return { containers: containers.deleted, networks: networks.deleted, ...(volumes && { volumes: volumes.deleted }), images: images.deleted, spaceReclaimed: images.spaceReclaimed };
      },
      // reset removes that host's store and runroot; boot repairs them after its reboot.
      ...stubs<SystemApi>(localOnly)(host, 'system', ['reset', 'boot']),
    };

    this.registries = remoteRegistries(c);
  }

  /**
   * One reading per container (every running one when `refs` is empty), as the docker CLI computes its
   * columns from Docker's stats object: CPU % from the cpu_stats − precpu_stats deltas.
   */
  private async stats(refs?: string[]): Promise<ContainerStats[]> {
    const c = this.client;
    const ids = refs?.length ? refs : (await c.json<Json[]>('GET', '/containers/json')).map((x) => x.Id as string);
    return Promise.all(ids.map(async (ref) => {
      const s = await c.json<Json>('GET', `/containers/${seg(ref)}/stats`, { kind: 'container', ref, query: { stream: false } });
      const cpu = s.cpu_stats ?? {};
      const pre = s.precpu_stats ?? {};
      const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
      const sysDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
      const online = cpu.online_cpus || 1;
      const mem = s.memory_stats ?? {};
      const io = (op: string) => ((s.blkio_stats?.io_service_bytes_recursive ?? []) as Json[]).filter((e) => String(e.op).toLowerCase() === op).reduce((n, e) => n + (e.value ?? 0), 0);
      const nets = Object.values((s.networks ?? {}) as Record<string, Json>);
      return {
        id: s.id, name: String(s.name ?? '').replace(/^\//, ''),
        cpuPercent: sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * online * 100 : 0,
        memoryUsage: mem.usage ?? 0, memoryLimit: mem.limit ?? 0, memoryPercent: mem.limit ? ((mem.usage ?? 0) / mem.limit) * 100 : 0,
        netRx: nets.reduce((n, x) => n + (x.rx_bytes ?? 0), 0), netTx: nets.reduce((n, x) => n + (x.tx_bytes ?? 0), 0),
        blockRead: io('read'), blockWrite: io('write'), pids: s.pids_stats?.current ?? 0,
        ...(cpu.cpu_usage ? { cpu: { totalNs: cpu.cpu_usage.total_usage ?? 0, systemNs: cpu.system_cpu_usage ?? 0, prevTotalNs: pre.cpu_usage?.total_usage ?? 0, prevSystemNs: pre.system_cpu_usage ?? 0, onlineCpus: online } } : {}),
      };
    }));
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

  /**
   * docker create as the docker CLI does it: the local files read here (--env-file, --label-file), --cidfile
   * claimed and written here, and --pull applied here (the API's create never pulls): `always` pulls first,
   * `missing` pulls when the create's 404 is the image's, `never` leaves the 404.
   */
  private async create(req: CreateRequest, terminal?: ClientTerminal, onPull?: (e: TransferEvent) => void): Promise<{ id: string; warnings: string[] }> {
    const policy = req.pull ?? 'missing';
    if (!['missing', 'always', 'never'].includes(policy)) throw new InvalidArgumentError('--pull', `"${String(policy)}" is not missing, always or never`);
    const { name, body } = createBodyOf(await withLocalFiles(req));
    // The terminal's size before the process runs, as the docker CLI sends it: the first `stty size` is right.
    const size = req.tty ? terminal?.size() : undefined;
    if (size?.rows && size.columns) body.HostConfig = { ...(body.HostConfig as Json | undefined), ConsoleSize: [size.rows, size.columns] };
    const post = () => this.client.json<{ Id: string; Warnings?: string[] | null }>('POST', '/containers/create', {
      body, query: { name }, kind: 'image', ref: req.image, ...(name ? { conflictIsName: name } : {}),
    });
    const pull = () => this.images.pull(req.image, { ...(onPull && { onProgress: onPull }) });
    const made = await withCidfile(req.cidfile, async () => {
      if (policy === 'always') await pull();
      const answer = await post().catch(async (err: unknown) => {
        // A 404 names no object by itself (a --volumes-from container, a network): the image is asked for.
        if (policy !== 'missing' || !(err instanceof NotFoundError) || await this.images.inspect(req.image).then(() => true, () => false)) throw err;
        await pull();
        return post();
      });
      return { ...answer, id: answer.Id };
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
   * With a terminal: its size goes with the create and each resize after; the detach keys end the attach
   * and leave the container running.
   */
  private async runContainer(req: CreateRequest, opts: RunOptions = {}): Promise<{ id: string; exitCode?: number; detached?: boolean; warnings: string[] }> {
    const c = this.client;
    const io = opts.io ?? {};
    const streams = req.attach ?? ['stdout', 'stderr', ...(req.openStdin ? ['stdin'] : [])];
    const withStdin = !opts.detach && streams.includes('stdin') && !!io.stdin;
    // Checked before the container is made, as locally.
    const detachKeys = req.tty && withStdin ? detachKeysOf(opts.detachKeys) : undefined;
    const { id, warnings } = await this.create(req, opts.detach ? undefined : io.terminal, opts.onPull);
    opts.onCreated?.(id);
    const command = req.command?.[0] ?? req.entrypoint?.[0] ?? "the image's command";
    const startIt = () => c.call('POST', `/containers/${seg(id)}/start`, { kind: 'container', ref: id, command, query: { detachKeys: opts.detachKeys } });
    if (opts.detach) {
      await startIt();
      return { id, warnings };
    }
    const conn = await c.upgrade(`/containers/${seg(id)}/attach`, {
      kind: 'container', ref: id,
      query: { stream: true, stdout: streams.includes('stdout'), stderr: streams.includes('stderr'), stdin: withStdin, detachKeys: opts.detachKeys },
    });
    const waitAbort = new AbortController();
    const waiting = c.request('POST', `/containers/${seg(id)}/wait`, { kind: 'container', ref: id, query: { condition: req.autoRemove ? 'removed' : 'next-exit' }, signal: waitAbort.signal });
    waiting.catch(() => { /* read below, or aborted after a failed start or a detach */ });
    let output: ReturnType<typeof pipeStreams> | undefined;
    const pipe = () => pipeStreams(conn, {
      tty: req.tty === true, io: { ...io, ...(withStdin ? {} : { stdin: undefined }) }, ...(detachKeys ? { detachKeys } : {}),
      resize: (size) => c.call('POST', `/containers/${seg(id)}/resize`, { query: { h: size.rows, w: size.columns } }),
    });
    // Without a terminal the output is read from now on; with one, the resizes wait for a running container.
    if (!req.tty) output = pipe();
    try {
      await startIt();
    } catch (err) {
      conn.socket.destroy();
      waitAbort.abort();
      // As the local engine: a --rm container that could not start is not left behind.
      if (req.autoRemove) await c.call('DELETE', `/containers/${seg(id)}`, { query: { force: true } }).catch(() => undefined);
      throw err;
    }
    output ??= pipe();
    const { detached, broken } = await output;
    if (broken) {
      waitAbort.abort();
      throw this.broke(broken, id);
    }
    if (detached) {
      waitAbort.abort();
      return { id, detached: true, warnings };
    }
    const exitCode = await this.waitAnswer(await this.dropped(waiting, id));
    return { id, exitCode, warnings };
  }

  /** The stream's connection broke (`cause`): the host named, the container left running there. */
  private broke(cause: Error, ref: string): RemoteError {
    return new RemoteError('dropped', this.host, `the connection to ${this.host} broke off: ${cause.message}`,
      `the container ${ref} keeps running there; see it with "berth -H ${this.host} ps"`, { cause });
  }

  /** A call whose connection broke while the stream ran: the host named, the container left running there. */
  private async dropped<T>(call: Promise<T>, ref: string): Promise<T> {
    try {
      return await call;
    } catch (err) {
      throw err instanceof RemoteError ? err : this.broke(err as Error, ref);
    }
  }

  /**
   * docker attach: the wait is asked first (the stream's end alone does not say how it ended), then the
   * stream; the exit code is the wait's answer, unless the detach keys ended it.
   */
  private async attach(ref: string, io: StdioStreams, opts: AttachOptions = {}): Promise<{ exitCode?: number; detached?: boolean }> {
    const c = this.client;
    const info = await c.json<ContainerInspect>('GET', `/containers/${seg(ref)}/json`, { kind: 'container', ref });
    const tty = info.Config.Tty === true;
    const detachKeys = tty && io.stdin ? detachKeysOf(opts.detachKeys) : undefined;
    if (!info.State.Running) {
      throw new BadStateError(`cannot attach to container ${info.Name.replace(/^\//, '')}: it is not running`, 'start it first, or read its output with "berth logs"');
    }
    const waitAbort = new AbortController();
    opts.signal?.addEventListener('abort', () => waitAbort.abort());
    const waiting = c.request('POST', `/containers/${seg(info.Id)}/wait`, { kind: 'container', ref, query: { condition: 'not-running' }, signal: waitAbort.signal });
    waiting.catch(() => { /* read below, or aborted */ });
    const conn = await c.upgrade(`/containers/${seg(info.Id)}/attach`, {
      kind: 'container', ref,
      query: { stream: true, stdout: !!io.stdout, stderr: !!io.stderr, stdin: !!io.stdin, logs: opts.replay !== false, detachKeys: opts.detachKeys },
    });
    opts.signal?.addEventListener('abort', () => conn.socket.destroy());
    const { detached, broken } = await pipeStreams(conn, {
      tty, io, ...(detachKeys ? { detachKeys } : {}),
      resize: (size) => c.call('POST', `/containers/${seg(info.Id)}/resize`, { query: { h: size.rows, w: size.columns } }),
    });
    if (broken) {
      waitAbort.abort();
      throw this.broke(broken, ref);
    }
    if (detached || opts.signal?.aborted) {
      waitAbort.abort();
      return { detached: true };
    }
    return { exitCode: await this.waitAnswer(await this.dropped(waiting, ref)) };
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
   * Docker's three calls (create the instance, start it, inspect it for the exit code). Over ssh each
   * connection is its own `dial-stdio`, and they reach one service there (src/cli/commands/service.ts), which
   * alone knows the instance. Without stdin or a terminal the start is a plain answer whose body is the stream.
   */
  private async exec(ref: string, req: ExecRequest, io: StdioStreams = {}): Promise<{ exitCode?: number; execId: string }> {
    const c = this.client;
    const stdin = req.interactive && io.stdin ? io.stdin : undefined;
    const tty = req.tty === true;
    const size = tty ? io.terminal?.size() : undefined;
    const consoleSize = size?.rows && size.columns ? [size.rows, size.columns] : undefined;
    const made = await c.json<{ Id: string }>('POST', `/containers/${seg(ref)}/exec`, {
      kind: 'container', ref,
      body: {
        Cmd: req.command, AttachStdin: !!stdin, AttachStdout: !req.detach, AttachStderr: !req.detach, Tty: tty,
        Env: req.env, User: req.user, WorkingDir: req.workdir, Privileged: req.privileged, ...(consoleSize ? { ConsoleSize: consoleSize } : {}),
      },
    });
    const start = { Detach: !!req.detach, Tty: tty, ...(consoleSize ? { ConsoleSize: consoleSize } : {}) };
    const subject = { kind: 'exec' as const, ref: made.Id, command: req.command[0] };
    if (req.detach) {
      await c.call('POST', `/exec/${made.Id}/start`, { ...subject, body: start });
      return { execId: made.Id };
    }
    if (stdin || tty) {
      const conn = await c.upgrade(`/exec/${made.Id}/start`, { ...subject, body: start });
      const { broken } = await pipeStreams(conn, {
        tty, io: { ...io, stdin },
        resize: (sz) => c.call('POST', `/exec/${made.Id}/resize`, { query: { h: sz.rows, w: sz.columns } }),
      });
      if (broken) throw this.broke(broken, ref);
    } else {
      const res = await c.request('POST', `/exec/${made.Id}/start`, { ...subject, body: start });
      const reader = new FrameReader(false, (kind, payload) => (kind === 'stdout' ? io.stdout : io.stderr)?.write(payload));
      try {
        for await (const chunk of res) reader.push(chunk as Buffer);
      } catch (err) {
        await this.dropped(Promise.reject(err), ref);
      }
    }
    const inspected = await this.dropped(c.json<{ ExitCode: number | null; Running?: boolean }>('GET', `/exec/${made.Id}/json`, subject), ref);
    return { execId: made.Id, exitCode: inspected.ExitCode ?? undefined };
  }
}

