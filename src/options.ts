/**
 * The create/run request, in Docker's own words. This is what `berth create/run` flags become and what
 * API users pass to `engine.containers.create()`. Values stay close to the user's text (`memory: '64m'`)
 * so that every layer that parses a part of it (bundle: process, security and resources; network:
 * ports, DNS, networks; container: name, restart) can name the flag in its InvalidArgumentError.
 * Numbers are accepted wherever Docker's API takes numbers.
 */
export interface CreateRequest {
  image: string;
  /** docker --pull: `missing` (default) pulls an image not in the store, `always` pulls first, `never` does not */
  pull?: 'missing' | 'always' | 'never';
  /** Replaces the image's Cmd. */
  command?: string[];
  /** Replaces the image's Entrypoint; `[]` or `['']` clears it (docker --entrypoint ''). */
  entrypoint?: string[];
  name?: string;

  // process
  env?: string[];
  /** Paths of env files, read by the engine (the CLI never touches the disk). */
  envFiles?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  /** -i: keep stdin open */
  openStdin?: boolean;
  /**
   * -a: the streams an attached `run` shows ('stdin', 'stdout', 'stderr'). Omitted: Docker's default,
   * stdout and stderr, and stdin with -i. `[]`: none (run -d).
   */
  attach?: string[];
  init?: boolean;
  stopSignal?: string;
  /** seconds */
  stopTimeout?: number;
  labels?: Record<string, string>;
  /** --label-file: paths of files of label lines, read by the engine; --label wins over them */
  labelFiles?: string[];
  /** --annotation KEY=VALUE: written into the OCI config's annotations */
  annotations?: Record<string, string>;
  /** --log-opt: 'max-size' (conmon's --log-size-max) and 'max-file' (1 only: conmon keeps one file) */
  logOpts?: Record<string, string>;
  /** --runtime: a name from the engine config's runtimes ('runc' is built in), or an executable's absolute path */
  runtime?: string;
  /** --cidfile: a path the engine creates (refused when it exists) and writes the new container's id to */
  cidfile?: string;

  // identity and namespaces
  hostname?: string;
  domainname?: string;
  /** 'host' | 'container:NAME' | 'private' | 'shareable' */
  pid?: string;
  ipc?: string;
  uts?: string;
  /** 'host' | 'private'; omitted: Docker's default, private on cgroup v2 hosts and host on v1 */
  cgroupns?: string;
  /** --userns, podman's: 'host' | 'auto[:size=N]' | 'private' | 'keep-id'; omitted: the engine's default (userns-remap) */
  userns?: string;
  /** --uidmap CONTAINER:HOST:SIZE, repeatable: a user namespace with exactly these uid ranges */
  uidmap?: string[];
  /** --gidmap, as --uidmap for gids; omitted with --uidmap: the same ranges (podman) */
  gidmap?: string[];

  // security
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** 'no-new-privileges[:true|false]', 'seccomp=unconfined|PATH', 'apparmor=...', 'label=...' */
  securityOpt?: string[];
  readOnly?: boolean;
  /** 'PATH[:OPTIONS]' */
  tmpfs?: string[];
  shmSize?: string | number;
  /** 'nofile=1024:2048' */
  ulimits?: string[];
  /** 'HOST[:CONTAINER[:PERMS]]' */
  devices?: string[];
  sysctls?: Record<string, string>;
  /** --group-add: supplementary groups, names resolved against the image's /etc/group at start */
  groupAdd?: string[];
  /** -1000..1000 */
  oomScoreAdj?: number;

  // resources
  resources?: ResourceRequest;
  /** --cgroup-parent: the cgroup the container's own cgroup is made under (default /berth) */
  cgroupParent?: string;

  // storage
  /** -v 'SRC:DST[:OPTS]' (bind when SRC is a path, named volume otherwise), or 'DST' (anonymous) */
  volumes?: string[];
  /** --volumes-from CONTAINER[:ro|rw] */
  volumesFrom?: string[];
  /** --mount type=bind|volume|tmpfs,... (Docker's CSV form) */
  mounts?: string[];

  // lifecycle
  /** 'no' | 'on-failure[:N]' | 'always' | 'unless-stopped' */
  restart?: string;
  /** --rm */
  autoRemove?: boolean;
  /**
   * --health-*: strings are Go durations ('30s', '1m30s'), numbers nanoseconds (Docker's API); 0 or
   * absent takes the image's value, then Docker's default. `test` is Docker's form (['CMD', ...],
   * ['CMD-SHELL', 'cmd'], ['NONE']); `cmd` is --health-cmd (run by /bin/sh -c).
   */
  health?: HealthRequest;
  /** --no-healthcheck: the image's HEALTHCHECK is not run */
  noHealthcheck?: boolean;

  // network
  network?: NetworkRequest;
}

export interface HealthRequest {
  cmd?: string;
  test?: string[];
  interval?: string | number;
  timeout?: string | number;
  startPeriod?: string | number;
  startInterval?: string | number;
  retries?: number;
}

export interface ResourceRequest {
  memory?: string | number;
  memorySwap?: string | number;
  memoryReservation?: string | number;
  oomKillDisable?: boolean;
  /** decimal CPUs, e.g. '0.5' */
  cpus?: string | number;
  cpuShares?: number;
  cpuPeriod?: number;
  cpuQuota?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
  /** 'DEVICE:RATE' e.g. '/dev/sda:1mb' */
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
}

export interface NetworkRequest {
  /** --network: 'bridge' (default), 'none', 'host', 'container:NAME', or network names; first is primary. */
  networks?: string[];
  ip?: string;
  ip6?: string;
  mac?: string;
  aliases?: string[];
  /** -p '[ip:][hostPort:]containerPort[/proto]', with ranges */
  publish?: string[];
  /** -P */
  publishAll?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  /** 'HOST:IP' */
  addHost?: string[];
  /** --expose 'PORT[-END][/PROTO]': exposed as the image's ExposedPorts are (published by -P) */
  expose?: string[];
  /** 'NAME[:ALIAS]' */
  links?: string[];
}

/** `network create`: what the network layer parses into its record. */
export interface NetworkCreateRequest {
  name: string;
  driver?: string; // bridge (default), macvlan, or a registered plugin
  subnets?: string[];
  gateways?: string[];
  ipRanges?: string[];
  ipv6?: boolean;
  internal?: boolean;
  options?: Record<string, string>;
  labels?: Record<string, string>;
  /** accept a --subnet that overlaps a route or address of the host (refused otherwise, as Podman) */
  allowHostOverlap?: boolean;
  /**
   * Docker's --attachable: standalone containers may join. Every global-scope network of Berth is attachable
   * (there is no swarm service to reserve it for); a local network refuses the flag, as Docker does.
   */
  attachable?: boolean;
}
