/**
 * The create/run request, in Docker's own words. This is what `berth create/run` flags become and what
 * API users pass to `engine.containers.create()`. Values stay close to the user's text (`memory: '64m'`)
 * so that every layer that parses a part of it (bundle: process, security and resources; network:
 * ports, DNS, networks; container: name, restart) can name the flag in its InvalidArgumentError.
 * Numbers are accepted wherever Docker's API takes numbers.
 */
export interface CreateRequest {
  image: string;
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
  init?: boolean;
  stopSignal?: string;
  /** seconds */
  stopTimeout?: number;
  labels?: Record<string, string>;

  // identity and namespaces
  hostname?: string;
  domainname?: string;
  /** 'host' | 'container:NAME' | 'private' | 'shareable' */
  pid?: string;
  ipc?: string;
  uts?: string;

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

  // resources
  resources?: ResourceRequest;

  // storage
  /** -v 'SRC:DST[:OPTS]' (bind when SRC is a path, named volume otherwise), or 'DST' (anonymous) */
  volumes?: string[];
  volumesFrom?: string[];

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
}
