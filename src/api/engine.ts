import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineApi, EngineEvent, EngineOptions, ContainersApi, ImagesApi, NetworksApi, SystemApi, CreateRequest, RunOptions, TransferEvent, VolumesApi, RegistriesApi } from './types.js';
import { ContainerManager, type UsernsPort } from '../container/index.js';
import { probeHost } from '../host.js';
import { openImageStore, type ImageStore } from '../image/index.js';
import type { RegistryAccess } from '../registry/index.js';
import { DEFAULT_POOLS, openNetworkManager, type PoolSpec } from '../network/index.js';
import { openVolumeManager, type VolumeManager } from '../volume/index.js';
import { volumeView } from './volumes.js';
import { buildTempDir, resolveLayout, type StoreLayout } from '../paths.js';
import { clusterMember } from './cluster-member.js';
import { networkManagerOptions } from './network-options.js';
import { createRuntime } from '../runtime/index.js';
import { fuseOverlayfsVersion, openStorage, parseStorageDriver, type StorageDriverName } from '../storage/index.js';
import * as bundle from '../bundle/index.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { loadConfig, parseConfig, usernsRemapMode } from '../config/index.js';
import { formatUsernsMode, openAllocator, type IdMap, type UsernsMode } from '../userns/index.js';
import { openStore } from '../store.js';
import { inspectView, summaryView } from './containers.js';
import { imagesApi } from './images.js';
import { registriesApi } from './registries.js';
import { createCredentialStore } from '../registry/credentials.js';
import { registriesConfig, resolveReference } from '../registry/names.js';
import { networkView } from './networks.js';
import { staleLocks } from '../util/lock.js';
import { parseTime } from '../util/time.js';
import { parsePruneFilter } from '../util/prune-filter.js';
import { eventFilter } from '../events.js';
import { VERSION } from '../version.js';
import { assertInNamespace, nestedUserns, rootlessDirs, rootlessFacts, stopPause } from '../rootless/index.js';
import { clusterSettings, openCluster, stopAgent, type ClusterAccess } from '../cluster/index.js';
import { RemoteEngine } from '../remote/index.js';

/**
 * Runs the monitor's exit command unless the attached `berth run` named in $1 is alive: that process does
 * the exit work itself, and a second node process started now would only compete with it for the CPU (if
 * it dies, repair finishes the work). $1 holds "pid starttime"; the pid suffices here, repair checks both.
 */
export const CLEANUP_GUARD = 'read -r pid _ < "$1" 2>/dev/null; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && exit 0; shift; exec "$@"';

/** bin/berth.js of this package, found from this module whether it runs from src/ (tests) or dist/src/. */
function berthBin(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'bin', 'berth.js'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find bin/berth.js above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return path.join(dir, 'bin', 'berth.js');
}

/**
 * `--config` for a child `berth` of this engine: the file it was given, or its object written into the
 * runroot once (written only when a container needs an exit hook, so constructing an engine stays free).
 */
function configFileArgs(config: EngineOptions['config'], layout: StoreLayout): string[] {
  if (config === undefined) return [];
  if (typeof config === 'string') return ['--config', path.resolve(config)];
  const file = path.join(layout.runroot, 'engine-config.json');
  mkdirSync(layout.runroot, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return ['--config', file];
}

/** `new Engine({ host })`: refused with options that name this machine's store or network. */
function remoteEngine(opts: EngineOptions): RemoteEngine {
  const local = (['root', 'runroot', 'network', 'config', 'clusterStore', 'clusterAdvertise', 'storageDriver'] as const).filter((k) => opts[k] !== undefined);
  if (local.length) {
    throw new InvalidArgumentError('host', `"${opts.host}" is a remote engine, and ${local.join(', ')} name${local.length === 1 ? 's' : ''} this machine's state`,
      'give either host, or the local store options, not both');
  }
  return new RemoteEngine(opts.host!, process.env, opts.tls);
}

/**
 * The engine: one store (root + runroot) and the layers over it. Cheap to construct; nothing touches the
 * host until a method is called, so `new Engine()` in a CLI that only prints help costs nothing.
 */
export class Engine implements EngineApi {
  // `!`: with opts.host the constructor returns a RemoteEngine instead, leaving these unset on purpose.
  readonly layout!: StoreLayout;
  readonly images!: ImagesApi;
  readonly containers!: ContainersApi;
  readonly networks!: NetworksApi;
  readonly volumes!: VolumesApi;
  readonly system!: SystemApi;
  readonly registries!: RegistriesApi;
  /**
   * The cluster store of global-scope networks, opened on first use (`cluster.store()`); `cluster.require()`
   * throws ClusterNotConfiguredError when none is set.
   */
  readonly cluster!: ClusterAccess;

  constructor(opts: EngineOptions = {}) {
    // One interface, two implementations: with a host, the object built is the remote client.
    if (opts.host !== undefined) return remoteEngine(opts) as unknown as Engine;
    const config = typeof opts.config === 'object' ? parseConfig(opts.config, 'the Engine config option') : loadConfig(opts.config);
    this.cluster = openCluster(clusterSettings({
      store: opts.clusterStore ?? config['cluster-store'],
      advertise: opts.clusterAdvertise ?? config['cluster-advertise'],
      opts: config['cluster-store-opts'] as Record<string, unknown> | undefined,
    }));
    this.layout = resolveLayout(opts, process.env, { root: config['data-root'], runroot: config['exec-root'] });
    const layout = this.layout;
    // Every call first waits for the store to be open (an older one tightened); until the root exists,
    // every call tries again.
    let opened: Promise<void> | undefined;
    const ready = () => (opened ??= Promise.resolve().then(assertInNamespace).then(() => openStore(layout)).then(async (done) => {
      if (!done) opened = undefined;
      else await repairAfterKills();
    }, (err: unknown) => {
      opened = undefined;
      throw err;
    }));
    // "A command killed at any point leaves a store that the next command repairs": every command looks
    // for the traces of a killed one (lock files whose holders are dead: one readdir; temp files and
    // leases of the image store: a few) and has the layer that owns them finish or undo the work.
    const repairAfterKills = async () => {
      await imageStore.repair();
      const stale = await staleLocks(layout.locks);
      if (!stale.length) return;
      await network.repair();
      if (stale.some((n) => n.startsWith('snapshot-'))) await storage.snapshots.repair();
      if (stale.some((n) => n.startsWith('vol-'))) await volumes.repair();
      if (stale.some((n) => n.startsWith('ctr-'))) await (await newManager()).repairInterrupted();
    };
    const storageDriver = opts.storageDriver !== undefined ? parseStorageDriver(opts.storageDriver, 'storage driver')
      : config['storage-driver'] !== undefined ? parseStorageDriver(config['storage-driver'], 'storage-driver') : 'auto';
    const storage = openStorage(layout, { driver: storageDriver });
    // Containers need the host's facts (tool paths, cgroup mode), probed once, on first use.
    let manager: Promise<ContainerManager> | undefined;
    const registryConfig = registriesConfig(config);
    const imageStore = openImageStore(layout, storage, {
      runningContainers: async (image) => (await containers()).runningContainersOf(image),
      unqualifiedSearch: registryConfig.unqualifiedSearch,
    });
    // A global network's containers need this host in the cluster: its lease, its keys, its agent.
    const member = this.cluster.configured
      ? clusterMember(layout, this.cluster, { berth: () => berth(), onNewLease: (lease) => network.republish(lease) })
      : undefined;
    const networkOptions = networkManagerOptions(layout, config, opts.network, member);
    const network = openNetworkManager(layout, networkOptions);
    // A volume is in use while a container's config names it: the container layer's records say which exist.
    const volumes = openVolumeManager(layout, { containerName: async (id) => (await (await newManager()).records.load(id))?.name });
    const bin = berthBin();
    // The exit hook is another process: it must read the same configuration as this engine.
    const configArgs = () => configFileArgs(opts.config, layout);
    // The cluster flags too: the exit hook of a container on a global network releases its address there.
    const clusterArgs = [...(opts.clusterStore ? ['--cluster-store', opts.clusterStore] : []), ...(opts.clusterAdvertise ? ['--cluster-advertise', opts.clusterAdvertise] : [])];
    // The hook mounts and unmounts each snapshot by the driver in its record; the setting goes along so that
    // its engine is this one (and a bad setting fails here, not in the hook).
    const driverArgs = opts.storageDriver !== undefined ? ['--storage-driver', storageDriver] : [];
    const berth = (...args: string[]) => [process.execPath, bin, '--root', layout.root, '--runroot', layout.runroot, ...configArgs(), ...clusterArgs, ...driverArgs, ...args];
    const containers = () => ready().then(newManager);
    const newManager = () => (manager ??= probeHost().then((host) => new ContainerManager(layout, {
      host,
      images: imageStore,
      snapshots: storage.snapshots,
      bundle,
      runtime: createRuntime(layout, host),
      network,
      volumes,
      runtimes: {
        default: config['default-runtime'] ?? 'runc',
        paths: { ...Object.fromEntries(Object.entries(config.runtimes ?? {}).map(([name, r]) => [name, r.path])), runc: host.tools.runc },
      },
      cleanupCommand: (id, attachedPidFile) => ['/bin/sh', '-c', CLEANUP_GUARD, 'berth-cleanup', attachedPidFile, ...berth('container', 'cleanup', id)],
      restartCommand: (id) => berth('container', 'cleanup', id),
      healthTickCommand: (id) => berth('healthcheck', 'tick', id),
      userns: usernsPort(usernsRemapMode(config)),
    })));
    let access: RegistryAccess | undefined;
    // The registry client (http, https, tls) loads only for a pull or push: `run` of a local image needs none of it.
    const registries = async () => (access ??= (await import('../registry/access.js')).openRegistryAccess({ config: registryConfig, credentials: createCredentialStore() }));
    const buildCacheDir = path.join(layout.root, 'build-cache');
    // The builder (with its Dockerfile parser, a third of the engine's code) loads only for a build.
    const images: ImagesApi = imagesApi(afterReady(imageStore, ready), registries, async (opts) => (await import('../build/index.js')).buildImage({
      images: afterReady(imageStore, ready),
      containers,
      pull: async (ref, signal, registryAuth) => {
        const credentials = registryAuth?.[resolveReference(ref).registry];
        await images.pull(ref, { signal, ...(credentials && { credentials }) });
      },
      cacheDir: buildCacheDir,
      tempDir: buildTempDir(layout.root),
      cacheMountsDir: path.join(layout.root, 'build-cache-mounts'),
    }, opts), buildCacheDir);
    this.images = images;
    // docker run/create --pull: a missing image is pulled before the container layer resolves it.
    const ensureImage = async (req: CreateRequest, onPull?: (e: TransferEvent) => void) => {
      const policy = req.pull ?? 'missing';
      if (policy !== 'never' && !['missing', 'always'].includes(policy)) {
        throw new InvalidArgumentError('--pull', `"${String(policy)}" is not missing, always or never`);
      }
      if (policy === 'never') return;
      if (policy === 'missing' && (await hasLocalImage(imageStore, req.image))) return;
      await ready();
      await images.pull(req.image, { onProgress: onPull });
    };
    this.containers = containersApi(containers, ensureImage);
    this.networks = networksApi(afterReady(network, ready), containers);
    this.volumes = volumesApi(volumes, ready);
    this.registries = registriesApi(registryConfig);
    this.system = systemApi(this, containers, network, this.images, { pools: config['default-address-pools'] ?? DEFAULT_POOLS, bip: config.bip, mtu: networkOptions.defaultBridge?.mtu }, usernsRemapMode(config), storage.driver);
  }

  get root(): string {
    return this.layout.root;
  }

  get runroot(): string {
    return this.layout.runroot;
  }

  run(req: CreateRequest, opts?: RunOptions) {
    return this.containers.run(req, opts);
  }
}


/** `target` with every method waiting for `ready` first (methods of these targets all return promises). */
function afterReady<T extends object>(target: T, ready: () => Promise<void>): T {
  return new Proxy(target, {
    get(obj, key) {
      const value: unknown = Reflect.get(obj, key, obj);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await ready();
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}

/**
 * Whether `ref` names an image in the store, or the embedded default that the container layer builds on
 * first use (a registry is never asked for it).
 */
async function hasLocalImage(store: ImageStore, ref: string): Promise<boolean> {
  if (DEFAULT_IMAGE_REF.test(ref)) return true;
  try {
    await store.resolve(ref);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

const DEFAULT_IMAGE_REF = /^(localhost\/)?busybox(:latest)?$/;

type EnsureImage = (req: CreateRequest, onPull?: (e: TransferEvent) => void) => Promise<void>;

function containersApi(manager: () => Promise<ContainerManager>, ensureImage: EnsureImage): ContainersApi {
  return {
    create: async (req, opts) => {
      await ensureImage(req, opts?.onPull);
      return (await manager()).create(req);
    },
    start: async (ref, opts) => (await manager()).start(ref, opts),
    run: async (req, opts) => {
      await ensureImage(req, opts?.onPull);
      return (await manager()).run(req, opts);
    },
    stop: async (ref, opts) => (await manager()).stop(ref, opts),
    kill: async (ref, sig) => (await manager()).kill(ref, sig),
    restart: async (ref, opts) => (await manager()).restart(ref, opts),
    remove: async (ref, opts) => (await manager()).remove(ref, opts),
    list: async (opts) => {
      const m = await manager();
      return Promise.all((await m.list(opts)).map(async (r) => summaryView(r, opts?.size ? await m.size(r) : undefined)));
    },
    inspect: async (ref, opts) => inspectView(await (await manager()).inspect(ref, opts)),
    logs: (ref, opts) => ({
      async *[Symbol.asyncIterator]() {
        yield* (await manager()).logs(ref, opts);
      },
    }),
    exec: async (ref, req, io) => (await manager()).exec(ref, req, io),
    attach: async (ref, io, opts) => (await manager()).attach(ref, io, opts),
    wait: async (ref, opts) => (await manager()).wait(ref, opts),
    pause: async (ref) => (await manager()).pause(ref),
    unpause: async (ref) => (await manager()).unpause(ref),
    copyFrom: async (ref, src, dest, opts) => (await manager()).copyFrom(ref, src, dest, opts),
    copyTo: async (ref, dest, src, opts) => (await manager()).copyTo(ref, dest, src, opts),
    diff: async (ref) => (await manager()).diff(ref),
    export: async (ref, output) => (await manager()).export(ref, output),
    commit: async (ref, opts) => (await manager()).commit(ref, opts),
    top: async (ref, ps) => (await manager()).top(ref, ps),
    stats: async (refs) => (await manager()).stats(refs),
    rename: async (ref, name) => (await manager()).rename(ref, name),
    update: async (ref, res) => (await manager()).update(ref, res),
    statPath: async (ref, p) => (await manager()).statPath(ref, p),
    port: async (ref) => (await manager()).port(ref),
    prune: async (opts) => (await manager()).prune(opts),
    cleanup: async (ref) => (await manager()).cleanup(ref),
    async healthcheck(ref, opts) {
      const { state, nextDelayMs } = await (await manager()).healthcheck(ref, opts);
      const last = state?.Log.at(-1);
      return { ...(last ? { healthy: last.ExitCode === 0 } : {}), ...(state ? { status: state.Status } : {}), ...(nextDelayMs !== undefined ? { nextDelayMs } : {}) };
    },
  };
}

function networksApi(n: ReturnType<typeof openNetworkManager>, manager: () => Promise<ContainerManager>): NetworksApi {
  return {
    create: (req) => n.create(req),
    list: async (opts) => (await n.list(opts)).map(networkView),
    inspect: async (ref) => networkView(await n.inspect(ref)),
    remove: (ref) => n.remove(ref),
    prune: (opts) => n.prune(opts),
    connect: async (net, ctr, opts) => (await manager()).connect(net, ctr, opts),
    disconnect: async (net, ctr, opts) => (await manager()).disconnect(net, ctr, opts),
    reload: async (opts) => {
      const m = await manager();
      const ids = opts?.containers?.length ? await Promise.all(opts.containers.map(async (c) => (await m.records.resolve(c)).id)) : undefined;
      return n.reload({ all: opts?.all ?? !ids, containers: ids });
    },
  };
}

function volumesApi(v: VolumeManager, ready: () => Promise<void>): VolumesApi {
  const ready_ = afterReady(v, ready);
  return {
    create: async (req) => volumeView(await ready_.inspect((await ready_.create(req)).name)),
    list: async (opts) => (await ready_.list(opts)).map(volumeView),
    inspect: async (name) => volumeView(await ready_.inspect(name)),
    remove: (name, opts) => ready_.remove(name, opts),
    prune: (opts) => ready_.prune(opts),
    export: (name, output) => ready_.export(name, output),
    import: (name, input) => ready_.import(name, input),
    registerDriver: (driver) => v.registerDriver(driver),
  };
}

/** What `info` shows of the addressing set-up (configuration file or defaults). */
interface AddressingFacts { pools: readonly PoolSpec[]; bip?: string; mtu?: number }

function systemApi(engine: Engine, manager: () => Promise<ContainerManager>, n: ReturnType<typeof openNetworkManager>, images: ImagesApi, addressing: AddressingFacts, usernsDefault: UsernsMode | undefined, storageDriver: () => Promise<StorageDriverName>): SystemApi {
  return {
    async prune(opts) {
      const filters = opts?.filters ?? [];
      // Checked before anything goes: a bad filter must not leave the containers pruned and the rest not.
      parsePruneFilter(filters);
      const cleaned = await engine.containers.prune({ filters });
      await (await manager()).reconcile();
      const networks = await n.prune({ filters });
      // Docker's order: the volumes the pruned containers held are free by now, the images after them.
      const volumes = opts?.volumes ? await engine.volumes.prune({ filters }) : undefined;
      const img = await images.prune({ all: opts?.all, filters });
      return { containers: cleaned.deleted, networks: networks.deleted, ...(volumes && { volumes: volumes.deleted }), images: img.deleted, spaceReclaimed: img.spaceReclaimed };
    },
    async reset() {
      try {
        for (const c of await engine.containers.list({ all: true })) await engine.containers.remove(c.id, { force: true });
        await (await manager()).reconcile();
        // A global network only leaves this host: the other hosts of the cluster keep it.
        for (const { network: net } of await n.list({ cluster: false })) if (!net.builtin && !['bridge', 'host', 'none'].includes(net.name)) await n.remove(net.id, { local: true });
        for (const vol of await engine.volumes.list()) await engine.volumes.remove(vol.Name, { force: true });
        for (const img of await images.list({ all: true })) await images.remove(img.id, { force: true }).catch(() => {});
        await images.prune({ all: true });
        await n.shutdown();
      } finally {
        // Nothing of this root is left for the agent to keep (a root that never joined a cluster has none).
        await stopAgent(engine.layout);
        // Rootless: the user's pause process holds the namespaces for every store of the user; it goes with
        // the default store, whose reset means "leave nothing running".
        const facts = rootlessFacts();
        const dirs = facts.rootless ? rootlessDirs(process.env, process.geteuid?.() ?? 0, facts.hostUid) : undefined;
        if (dirs && dirs.root === engine.root) await stopPause(dirs.runroot);
      }
    },
    async boot() {
      // The chains and jumps first (a reboot took them): the starts below then only add their own rules.
      await n.reload();
      return (await manager()).boot();
    },
    async info() {
      const facts = await probeHost();
      const ctrs = await engine.containers.list({ all: true });
      // This host's view: info never connects to the cluster store.
      const nets = await n.list({ cluster: false });
      const rootless = rootlessFacts();
      // Rootless containers never use the bridge: its record exists, but no device is ever made for it.
      const bridge = rootless.rootless ? undefined : nets.find((d) => d.network.builtin && d.network.name === 'bridge')?.network;
      const idMap = (map: readonly IdMap[]) => map.map((l) => ({ ContainerID: l.containerID, HostID: l.hostID, Size: l.size }));
      // A store that can mount nothing (rootless, no overlay in a user namespace, no fuse-overlayfs) still has an info: the reason is its warning.
      const driver = await storageDriver().then((name) => ({ name }), (err: unknown) => ({ name: 'none' as const, warning: (err as Error).message }));
      const driverStatus = driver.name === 'fuse-overlayfs' ? [['Mount Program', `fuse-overlayfs ${(await fuseOverlayfsVersion()) ?? ''}`.trim()]]
        : driver.name === 'overlay' ? [['Native Overlay Diff', 'true'], ...(rootless.rootless ? [['userxattr', 'true']] : [])] : [];
      // Docker's `docker info` JSON (system.Info), so that `{{.ServerVersion}}`, `{{.DockerRootDir}}` and the
      // like work; Berth's own facts follow under names Docker does not use.
      return {
        ID: '', Containers: ctrs.length, ContainersRunning: ctrs.filter((c) => c.state === 'running' || c.state === 'restarting').length,
        ContainersPaused: ctrs.filter((c) => c.state === 'paused').length, // Docker counts every container neither running (restarting included) nor paused as stopped, created ones too.
        ContainersStopped: ctrs.filter((c) => !['running', 'restarting', 'paused'].includes(c.state)).length,
        Images: new Set((await images.list({ all: true })).map((i) => i.id)).size, Driver: driver.name,
        DriverStatus: driverStatus,
        Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'macvlan', 'null'], Authorization: null, Log: ['k8s-file'] },
        NCPU: facts.cpus, MemTotal: os.totalmem(), DockerRootDir: engine.root, Name: os.hostname(), Labels: [],
        ServerVersion: VERSION, CgroupDriver: 'cgroupfs', CgroupVersion: facts.cgroupMode === 'v2' ? '2' : '1',
        KernelVersion: os.release(), OSType: 'linux', Architecture: os.machine(),
        DefaultRuntime: 'runc', Runtimes: { runc: { path: facts.tools.runc } },
        // Docker lists name=rootless among them when its daemon runs rootless.
        // Docker lists name=userns when userns-remap is on.
        SecurityOptions: ['name=seccomp,profile=builtin', ...(rootless.rootless ? ['name=rootless'] : []), ...(usernsDefault ? ['name=userns'] : [])],
        DefaultAddressPools: addressing.pools.map((p) => ({ Base: p.base, Size: p.size })),
        Warnings: [...nets.flatMap((d) => d.warnings), ...('warning' in driver ? [driver.warning] : [])],
        RunRoot: engine.runroot,
        // Berth's own: the default bridge as it is (a subnet still "pending" is chosen when the bridge is first made).
        DefaultBridge: bridge && {
          Name: (bridge.driverOptions as { bridge: string }).bridge, Subnet: bridge.ipam?.subnet, Gateway: bridge.ipam?.gateway,
          SubnetPending: !!bridge.subnetPending, MTU: (bridge.driverOptions as { mtu: number }).mtu, ...(addressing.bip ? { Bip: addressing.bip } : {}),
        }, CgroupMode: facts.cgroupMode, Monitor: facts.tools.conmon,
        // Docker's (pre-swarm) fields: the settings as given; info never connects to the store.
        // Berth's own (issue 18): whether it runs rootless, the user namespace's maps, how containers reach out.
        Rootless: rootless.rootless,
        ...(rootless.rootless ? { IdMappings: { UidMap: idMap(rootless.uidMap), GidMap: idMap(rootless.gidMap) } } : {}),
        NetworkHelper: rootless.rootless ? 'slirp4netns' : 'bridge+iptables',
        // The user namespace a container gets without --userns: the host's, userns-remap's mode, or (rootless) the user's.
        ContainerUserns: rootless.rootless ? 'rootless' : usernsDefault ? formatUsernsMode(usernsDefault) : 'host',
        ClusterStore: engine.cluster.settings.store?.text ?? '', ClusterAdvertise: engine.cluster.settings.advertise?.text ?? '',
      };
    },
    events(opts = {}): AsyncIterable<EngineEvent> {
      const since = parseTime(opts.since, '--since');
      const until = parseTime(opts.until, '--until');
      const matches = eventFilter(opts.filters ?? []);
      return {
        async *[Symbol.asyncIterator]() {
          const m = await manager();
          for await (const ev of m.events.read({ since, until, follow: until === undefined, signal: opts.signal })) {
            if (matches(ev)) yield ev;
          }
        },
      };
    },
  };
}

export { parseTime } from '../util/time.js';


/**
 * Root: auto ranges from the `berth` subid lines, host-wide. Rootless: from the user's own namespace, with
 * the user keep-id maps (rootless/nested.ts).
 */
function usernsPort(dflt: UsernsMode | undefined): UsernsPort {
  const nested = nestedUserns();
  if (nested) return { allocator: openAllocator(nested.allocator), rootless: nested.facts, ...(dflt ? { default: dflt } : {}) };
  return {
    // The subid files can be named by the environment, as shadow-utils' own tests do: the tests of a
    // missing entry must not edit the host's files under other tests' feet.
    allocator: openAllocator({ subuid: process.env.BERTH_SUBUID_FILE || undefined, subgid: process.env.BERTH_SUBGID_FILE || undefined }),
    ...(dflt ? { default: dflt } : {}),
  };
}
