/**
 * Berth's public types: the Engine API's requests, results and the interfaces of its parts. A leaf module
 * (it imports only other leaves), so that every layer can name these types without importing upward;
 * api/ re-exports them as the public surface.
 */
import type { Readable, Writable } from 'node:stream';
import type { CreateRequest, NetworkCreateRequest, ResourceRequest } from './options.js';

export type { CreateRequest, HealthRequest, ResourceRequest, NetworkRequest, NetworkCreateRequest } from './options.js';
import type { EngineEvent } from './events.js';
import type { VolumeCreateRequest, VolumeDriver } from './volume/types.js';

export type { VolumeCreateRequest, VolumeDriver, VolumeInfo } from './volume/types.js';
import type { EngineConfig } from './config/index.js';
import type { BuildEvent, BuildOptions, BuildResult } from './build/index.js';
export type { BuildEvent, BuildOptions, BuildResult } from './build/index.js';
export type { EngineConfig } from './config/index.js';
export type { EngineEvent } from './events.js';
import type { PullOptions, PullResult, PushOptions, PushResult, TransferEvent } from './registry/index.js';
export type { PullOptions, PullResult, PushOptions, PushResult, TransferEvent } from './registry/index.js';

export interface EngineOptions {
  /** Persistent store (default /var/lib/berth, or $BERTH_ROOT). */
  root?: string;
  /** Volatile state (default /run/berth, or a folder of its own for a non-default root). */
  runroot?: string;
  /**
   * The default `bridge` network of this root, and the iptables chain prefix. A non-default root gets its
   * own bridge name, subnet and chains derived from its path, so two roots never share host objects.
   */
  network?: { bridgeName?: string; subnet?: string; mtu?: number; chainPrefix?: string };
  /**
   * The engine configuration (README, "Configuration"): a file's path, or the object itself; left out,
   * /etc/berth/berth.json when that file exists. The options above beat what it says.
   */
  config?: string | EngineConfig;
  /**
   * The cluster store of multi-host networks, `etcd://HOST:PORT[,...]` or `etcds://...` (beats the config
   * file's cluster-store). Nothing connects to it until a global-scope network needs it.
   */
  clusterStore?: string;
  /** This host's address as the other hosts reach it: ADDR, ADDR:PORT or an interface name (beats cluster-advertise). */
  clusterAdvertise?: string;
  /**
   * How new containers' root filesystems are mounted: `overlay`, `fuse-overlayfs` or `auto` (the default:
   * overlay; rootless, fuse-overlayfs where the kernel cannot mount overlayfs in a user namespace). Beats the
   * config file's storage-driver.
   */
  storageDriver?: string;
  /**
   * A remote engine instead of this machine's store: `unix:///PATH`, `tcp://HOST:PORT` or
   * `ssh://[USER@]HOST[:PORT]` (an Engine API that `berth system service` or, over ssh, `berth system
   * dial-stdio` serves). The engine returned has the same interface; its calls go there (src/remote/).
   * The store options above name local state and are refused with it.
   */
  host?: string;
  /**
   * TLS for a `tcp://` host, as the docker CLI's --tls/--tlsverify: the CA, client certificate and key
   * files, and whether the server's certificate is checked against the CA.
   */
  tls?: { verify: boolean; ca?: string; cert?: string; key?: string };
}

// ---------------------------------------------------------------- images

export interface ImageSummary {
  id: string; // sha256:...
  repoTags: string[];
  repoDigests: string[];
  created: string; // RFC 3339
  size: number; // bytes, unpacked
}

/** Shaped like `docker image inspect` (PascalCase on purpose: tools parse it). */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: string;
  Author?: string;
  Comment?: string;
  Architecture: string;
  Os: string;
  Size: number;
  Config: Record<string, unknown>;
  RootFS: { Type: 'layers'; Layers: string[] };
  Metadata?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface HistoryEntry {
  id: string; // image id for the top entry, '<missing>' otherwise (as docker)
  created: string;
  createdBy: string;
  size: number;
  comment: string;
  emptyLayer: boolean;
}

export interface RemovedImage {
  untagged?: string;
  deleted?: string;
}

export type ArchiveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir';

export interface ImagesApi {
  /** docker build: an image from a Dockerfile and its context; progress through `onProgress`. */
  build(opts: BuildOptions): Promise<BuildResult>;
  /** `build` as a stream of its progress, ending with `done`; a failure is thrown by the iteration; leaving the loop early stops the build. */
  buildEvents(opts: Omit<BuildOptions, 'onProgress'>): AsyncIterable<BuildEvent>;
  list(opts?: { all?: boolean; filters?: string[] }): Promise<ImageSummary[]>;
  inspect(ref: string): Promise<ImageInspect>;
  tag(source: string, target: string): Promise<void>;
  /** `noPrune`: keep the untagged parents Docker's rmi deletes with the image (`--no-prune`) */
  remove(ref: string, opts?: { force?: boolean; noPrune?: boolean }): Promise<RemovedImage[]>;
  /** `filters` as Docker's prune takes them: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE]. */
  prune(opts?: { all?: boolean; filters?: string[] }): Promise<{ deleted: string[]; spaceReclaimed: number }>;
  /** A docker-archive or OCI layout, as a tar file path, a directory path, or a tar stream. */
  /** Aborting `signal` stops the load; what it had stored is removed before the promise rejects with the signal's reason. */
  load(input: string | Readable, opts?: { signal?: AbortSignal }): Promise<{ loaded: string[] }>;
  save(refs: string[], output: string | Writable, opts?: { format?: ArchiveFormat }): Promise<void>;
  /** A root filesystem tarball (docker import). `changes` are Dockerfile-style: 'CMD ["sh"]', 'ENV A=b'. */
  import(input: string | Readable, opts?: { reference?: string; changes?: string[]; message?: string }): Promise<string>;
  history(ref: string): Promise<HistoryEntry[]>;
  /** Read-only overlay of the image; returns the mount point (podman image mount). */
  mount(ref: string): Promise<string>;
  unmount(ref: string): Promise<void>;
  /** Builds the embedded default image from the host's busybox-static, tags localhost/busybox:latest. */
  ensureDefault(opts?: { rebuild?: boolean }): Promise<string>;
  /** docker pull: the image's manifest, config and layers from its registry, each verified; `onProgress` sees each step. */
  pull(ref: string, opts?: PullOptions): Promise<PullResult>;
  /** `pull` as a stream of its progress, ending with `done` (one per tag with `allTags`); a failure is thrown by the iteration. */
  pullEvents(ref: string, opts?: Omit<PullOptions, 'onProgress'>): AsyncIterable<TransferEvent>;
  /** docker push: the blobs the registry lacks, then the manifest under the tag. */
  push(ref: string, opts?: PushOptions): Promise<PushResult>;
}

// ---------------------------------------------------------------- containers

/** Docker's State.Status words (the container layer's own states, src/container/state.ts, map onto these). */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited';

export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface ContainerSummary {
  id: string;
  names: string[];
  image: string;
  imageId: string;
  command: string;
  created: string; // RFC 3339
  state: ContainerState;
  /** Docker's human text: 'Up 3 minutes', 'Exited (0) 2 seconds ago', 'Created' */
  status: string;
  ports: PortBinding[];
  labels: Record<string, string>;
  networks: string[];
  /** Docker's HostConfig.NetworkMode word ('bridge', 'none', 'host', 'container:ID', a network's name) */
  networkMode?: string;
  /** each network joined while running, with its address (the API's NetworkSettings.Networks) */
  endpoints?: ContainerEndpoint[];
  /** the mounts planned at create, in Docker's `Mounts` shape (as inspect shows them) */
  mounts?: Record<string, unknown>[];
  exitCode?: number;
  /** when asked for (ps -s): bytes the container wrote, and that plus its image (Docker's SizeRw, SizeRootFs) */
  sizeRw?: number;
  sizeRootFs?: number;
}

export interface ContainerEndpoint {
  network: string;
  networkId: string;
  /** without its prefix length */
  ipv4: string;
  prefixLength: number;
  gateway: string;
  ipv6: string;
  mac: string;
  aliases: string[];
}

/** Shaped like `docker inspect` of a container. */
export interface ContainerInspect {
  Id: string;
  Name: string; // '/name'
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: string; Running: boolean; Paused: boolean; Restarting: boolean; OOMKilled: boolean; Dead: boolean;
    Pid: number; ExitCode: number; Error: string; StartedAt: string; FinishedAt: string;
    /** only for a container with a healthcheck, as Docker */
    Health?: HealthView;
  };
  Image: string;
  RestartCount: number;
  HostConfig: Record<string, unknown>;
  Config: Record<string, unknown>;
  NetworkSettings: Record<string, unknown>;
  Mounts: unknown[];
  /** only with inspect -s, as Docker's */
  SizeRw?: number;
  SizeRootFs?: number;
  [key: string]: unknown;
}

export interface StdioStreams {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /**
   * The client's terminal, for a container or exec with a tty (docker's ConsoleSize and resize): its
   * terminal starts at `size()` and follows each resize until the attach ends. Ignored without a tty.
   */
  terminal?: ClientTerminal;
}

export interface TerminalSize {
  rows: number;
  columns: number;
}

export interface ClientTerminal {
  size(): TerminalSize;
  /** Calls `listener` after each change of size, until the returned function is called. */
  onResize(listener: () => void): () => void;
}

export interface LogOptions {
  follow?: boolean;
  timestamps?: boolean;
  /** RFC 3339, unix seconds, or relative ('10m') */
  since?: string;
  until?: string;
  /** number of lines from the end, or 'all' */
  tail?: number | 'all';
  /** ends a follow when aborted (an API client went away), so no reader waits on a container that stays quiet */
  signal?: AbortSignal;
}

export interface LogEntry {
  time: string; // RFC 3339 nano
  stream: 'stdout' | 'stderr';
  /** one line, without its newline; `partial` when the container wrote no newline yet */
  line: string;
  partial: boolean;
}

export interface ExecRequest {
  command: string[];
  interactive?: boolean;
  tty?: boolean;
  env?: string[];
  user?: string;
  workdir?: string;
  detach?: boolean;
  privileged?: boolean;
}

export interface ContainerStats {
  id: string;
  name: string;
  cpuPercent: number;
  memoryUsage: number;
  memoryLimit: number;
  memoryPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
  /**
   * The raw counters behind cpuPercent, for clients that compute it themselves (the Engine API's
   * cpu_stats/precpu_stats): the container's CPU time and the host's (all CPUs, /proc/stat), in ns, at
   * the reading and at the sample before it. Absent when the container's cgroup could not be read.
   */
  cpu?: { totalNs: number; systemNs: number; prevTotalNs: number; prevSystemNs: number; onlineCpus: number };
}

export interface TopResult {
  titles: string[];
  processes: string[][];
}


export interface AttachOptions {
  detachKeys?: string;
  /** default true: the output logged before the attach comes first */
  replay?: boolean;
  signal?: AbortSignal;
}

export interface StartOptions {
  /** The client terminal `start -a` will attach (see StdioStreams.terminal). */
  terminal?: ClientTerminal;
  /** The detach keys `start -a` will attach with: refused before the container starts when invalid. */
  detachKeys?: string;
}

export interface RunOptions {
  detach?: boolean;
  /** Progress of the pull that `pull: 'missing'|'always'` starts (docker run prints it). */
  onPull?: (event: TransferEvent) => void;
  io?: StdioStreams;
  /** Called with the new container's ID as soon as it exists (the CLI forwards signals to it). */
  onCreated?: (id: string) => void;
  /**
   * With a tty and stdin attached: the keys that leave the container running and return (`detached`),
   * Docker's --detach-keys; default ctrl-p,ctrl-q. Checked before the container is created.
   */
  detachKeys?: string;
}

export interface ContainersApi {
  create(req: CreateRequest, opts?: Pick<RunOptions, 'onPull'>): Promise<{ id: string; warnings: string[] }>;
  /** Starts a created or exited container; with a tty, its terminal starts at `terminal`'s size. */
  start(ref: string, opts?: StartOptions): Promise<void>;
  /**
   * docker run. Detached: resolves once the container is running, with its id. Attached: pipes the
   * container's stdio to `io` and resolves with its exit code when it ends (removing it with autoRemove),
   * or with `detached` when the user typed the detach keys (the container keeps running).
   */
  run(req: CreateRequest, opts?: RunOptions): Promise<{ id: string; exitCode?: number; detached?: boolean; warnings: string[] }>;
  stop(ref: string, opts?: { timeout?: number; signal?: string }): Promise<void>;
  kill(ref: string, signal?: string): Promise<void>;
  restart(ref: string, opts?: { timeout?: number }): Promise<void>;
  remove(ref: string, opts?: { force?: boolean; volumes?: boolean }): Promise<void>;
  /** `size`: also measure what each container wrote (ps -s; costs a walk of each container's upper layer). */
  list(opts?: { all?: boolean; filters?: string[]; last?: number; size?: boolean }): Promise<ContainerSummary[]>;
  /** `size`: SizeRw and SizeRootFs too (inspect -s). */
  inspect(ref: string, opts?: { size?: boolean }): Promise<ContainerInspect>;
  logs(ref: string, opts?: LogOptions): AsyncIterable<LogEntry>;
  exec(ref: string, req: ExecRequest, io?: StdioStreams): Promise<{ exitCode?: number; execId: string }>;
  /**
   * With a tty, the detach keys (default ctrl-p,ctrl-q) end the attach and leave the container running.
   * The output shown starts at the log's start unless `replay` is false (only what comes from now on, as
   * the Engine API's attach without `logs`). An aborted `signal` ends the attach (a client went away).
   */
  attach(ref: string, io: StdioStreams, opts?: AttachOptions): Promise<{ exitCode?: number; detached?: boolean }>;
  /** Waits for the container to stop; resolves with its exit code. An aborted `signal` ends the wait (rejects). */
  wait(ref: string, opts?: { condition?: 'not-running' | 'next-exit' | 'removed'; signal?: AbortSignal }): Promise<number>;
  pause(ref: string): Promise<void>;
  unpause(ref: string): Promise<void>;
  /**
   * docker cp out of the container: `path` (resolved inside the container, through its binds and
   * volumes) to a host path by Docker's rules, or as a tar stream into a Writable.
   */
  copyFrom(ref: string, path: string, dest: string | Writable, opts?: CopyOptions): Promise<CopyResult>;
  /** docker cp into the container: a host file or folder, or a tar stream extracted into the folder `path`. */
  copyTo(ref: string, path: string, src: string | Readable, opts?: CopyOptions): Promise<CopyResult>;
  /** docker diff: what the container changed against its image (A/C/D), mount points and volumes left out. */
  diff(ref: string): Promise<ContainerChange[]>;
  /**
   * docker export: the container's root filesystem as a tar (volumes not included), into a stream or a
   * file that appears only when complete.
   */
  export(ref: string, output: string | Writable): Promise<void>;
  /** docker commit: the writable layer as a new image layer; resolves with the new image ID. */
  commit(ref: string, opts?: CommitRequest): Promise<string>;
  top(ref: string, psArgs?: string[]): Promise<TopResult>;
  stats(refs?: string[]): Promise<ContainerStats[]>;
  rename(ref: string, newName: string): Promise<void>;
  update(ref: string, resources: ResourceRequest & { restart?: string }): Promise<void>;
  /** What `path` is in the container (the last link not followed), as docker cp's HEAD archive reports it. */
  statPath(ref: string, path: string): Promise<PathStat>;
  port(ref: string): Promise<PortBinding[]>;
  /** `filters`: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE], as Docker's. */
  prune(opts?: { filters?: string[] }): Promise<{ deleted: string[] }>;
  /**
   * Runs after a container's process ends (the monitor calls `berth container cleanup ID`, as podman's
   * conmon does): tears down its network and mounts, records the exit, applies --rm and restart policies.
   */
  cleanup(ref: string): Promise<void>;
  /**
   * Runs the container's healthcheck once now (podman's `healthcheck run`) and records the result as the
   * timer's checks are. `healthy` is false when the check failed; a container without a healthcheck, or
   * not running, is an error. With `timer` (the timer loop's own call) a container gone or stopped ends
   * the timer instead: `nextDelayMs` is then undefined.
   */
  healthcheck(ref: string, opts?: { timer?: boolean }): Promise<{ healthy?: boolean; status?: HealthStatusWord; nextDelayMs?: number }>;
}

export interface CopyOptions {
  /** -a: keep the source's uid/gid (default: the copy belongs to root) */
  archive?: boolean;
  /** -L: follow a link at the source path itself */
  followLink?: boolean;
  /** default true: a running container is paused during the copy, as Docker does */
  pause?: boolean;
}

export interface CopyResult {
  /** size of the tar stream that went across */
  bytes: number;
  /** tar's warnings (members it refused or changed) */
  warnings: string[];
}

export interface PathStat {
  /** the last component's name */
  name: string;
  size: number;
  /** st_mode: type and permission bits */
  mode: number;
  /** RFC 3339 with nanoseconds */
  mtime: string;
  /** for a link, where it leads, resolved inside the container; else '' */
  linkTarget: string;
}

export interface ContainerChange {
  kind: 'A' | 'C' | 'D';
  /** absolute in the container */
  path: string;
}

export interface CommitRequest {
  /** name[:tag] for the new image */
  reference?: string;
  /** Dockerfile instructions applied to the config (CMD, ENV, ...), as `--change` */
  changes?: string[];
  /** -m: the history entry's comment */
  message?: string;
  /** -a */
  author?: string;
  /** default true: a running container is paused while its layer is read */
  pause?: boolean;
}

export type HealthStatusWord = 'starting' | 'healthy' | 'unhealthy';

/** Docker's State.Health. */
export interface HealthView {
  Status: HealthStatusWord;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

// ---------------------------------------------------------------- networks

export interface NetworkSummary {
  id: string;
  name: string;
  driver: string;
  scope: 'local' | 'global';
  created: string;
  internal: boolean;
  ipv6: boolean;
  subnets: { subnet: string; gateway?: string; ipRange?: string }[];
  options: Record<string, string>;
  labels: Record<string, string>;
  containers: Record<string, { name: string; ipv4?: string; ipv6?: string; mac?: string; endpoint: string }>;
  /** routes or addresses of other host interfaces inside the subnets while the bridge exists */
  warnings?: string[];
  /** a global network's hosts (Docker's Peers), each with its subnet on a flannel network */
  peers?: { name: string; ip: string; subnet?: string }[];
}

export interface NetworksApi {
  create(req: NetworkCreateRequest): Promise<{ id: string }>;
  list(opts?: { filters?: string[] }): Promise<NetworkSummary[]>;
  inspect(ref: string): Promise<NetworkSummary>;
  remove(ref: string): Promise<void>;
  /** `filters`: until=TIME, label=KEY[=VALUE], label!=KEY[=VALUE], as Docker's. */
  prune(opts?: { filters?: string[] }): Promise<{ deleted: string[] }>;
  connect(network: string, container: string, opts?: { ip?: string; ip6?: string; aliases?: string[] }): Promise<void>;
  disconnect(network: string, container: string, opts?: { force?: boolean }): Promise<void>;
  /** Puts back every iptables rule of running containers and networks (after a firewall flush). */
  reload(opts?: { all?: boolean; containers?: string[] }): Promise<{ reloaded: string[] }>;
}

// ---------------------------------------------------------------- volumes

/** `volume inspect`, in Docker's field names. */
export interface VolumeSummary {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
  /** ids of the containers whose config names the volume (Docker's UsageData.RefCount counts them) */
  UsedBy: string[];
}

export interface VolumesApi {
  /** Idempotent for a name that exists with the same driver, as Docker's. */
  create(req?: VolumeCreateRequest): Promise<VolumeSummary>;
  /** `filters`: dangling=true|false, name=, label=KEY[=VALUE], driver= */
  list(opts?: { filters?: string[] }): Promise<VolumeSummary[]>;
  inspect(name: string): Promise<VolumeSummary>;
  /** Refused while a container uses the volume; `force` makes a missing volume no error. */
  remove(name: string, opts?: { force?: boolean }): Promise<void>;
  /** podman volume export: the volume's content as a tar, into a stream or a file that appears only when complete. */
  export(name: string, output: string | Writable): Promise<void>;
  /**
   * podman volume import, all or nothing: a tar (file or stream) fills an existing, empty volume that no
   * running container uses; links in it are never followed and `..` entries are refused.
   */
  import(name: string, input: string | Readable): Promise<void>;
  /** Unused anonymous volumes; with `all`, every unused volume (Docker 23+). */
  prune(opts?: { all?: boolean; filters?: string[] }): Promise<{ deleted: string[] }>;
  /**
   * Adds a volume driver for this engine object (volume/types.ts `VolumeDriver`). It lives in this
   * process: containers using its volumes must be started, stopped and removed through this engine.
   */
  registerDriver(driver: VolumeDriver): void;
}

// ---------------------------------------------------------------- system

export interface SystemApi {
  /** Removes stopped containers, unused networks, dangling images, and repairs leftovers of crashes. */
  /**
   * `filters` (until=, label=, label!=) apply to the containers, networks, volumes and images alike, as Docker's.
   * `volumes`: also the unused anonymous volumes (docker system prune --volumes); `volumes` is then listed.
   */
  prune(opts?: { all?: boolean; volumes?: boolean; filters?: string[] }): Promise<{ containers: string[]; networks: string[]; volumes?: string[]; images: string[]; spaceReclaimed: number }>;
  /**
   * Removes everything this root holds: containers, networks, images, and the host objects made for them
   * (bridges, iptables chains, name servers). podman system reset.
   */
  reset(): Promise<void>;
  /**
   * For an init system, once at host start-up: records the exits a reboot caused, puts back the networks'
   * firewall, and starts every container whose restart policy says it should run (Docker's daemon
   * restore). Idempotent; two at once take turns.
   */
  boot(): Promise<{ started: string[]; failed: { id: string; name: string; error: string }[] }>;
  info(): Promise<Record<string, unknown>>;
  events(opts?: { since?: string; until?: string; filters?: string[]; signal?: AbortSignal }): AsyncIterable<EngineEvent>;
}

// ---------------------------------------------------------------- registries

export interface RegistryLoginOptions {
  /** Berth's auth file to keep the login in (`--authfile`); default $BERTH_AUTH_FILE, then ~/.config/berth/auth.json */
  authFile?: string;
  /** false: accept any certificate and plain HTTP for the check (`--tls-verify=false`) */
  tlsVerify?: boolean;
  /** connect and idle time-outs of the check, ms */
  timeouts?: { connectMs?: number; idleMs?: number };
  signal?: AbortSignal;
  /** false: only check the login, keep nothing (the Engine API's /auth: the client keeps it) */
  store?: boolean;
}

export interface RegistryLoginResult {
  /** the registry as Berth names it: `docker.io`, `127.0.0.1:5000` */
  registry: string;
  /** where the login went: the auth file, or `docker-credential-NAME` */
  storedIn: string;
  /** true when it went to a file (Docker warns that the password is kept unencrypted there) */
  inFile: boolean;
}

export interface RegistriesApi {
  /**
   * Checks `creds` against `registry` (default docker.io; GET /v2/ through the auth challenge) and keeps
   * them when the registry accepts them. Throws RegistryError (`unauthorized`, `unreachable`, `tls`...).
   */
  login(registry: string | undefined, creds: { username: string; password: string }, opts?: RegistryLoginOptions): Promise<RegistryLoginResult>;
  /** Forgets the login; `removed` false when there was none. `key` is what Docker prints (docker.io: its index URL). */
  logout(registry: string | undefined, opts?: Pick<RegistryLoginOptions, 'authFile'>): Promise<{ registry: string; key: string; removed: boolean }>;
}

export interface EngineApi {
  readonly root: string;
  readonly runroot: string;
  readonly registries: RegistriesApi;
  readonly images: ImagesApi;
  readonly containers: ContainersApi;
  readonly networks: NetworksApi;
  readonly volumes: VolumesApi;
  readonly system: SystemApi;
  /** Shortcut for containers.run. */
  run(req: CreateRequest, opts?: RunOptions): ReturnType<ContainersApi['run']>;
}
