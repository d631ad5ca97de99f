/**
 * `run`/`create` flags, with Docker's names and short forms, and their translation into a CreateRequest.
 * Values are passed on as the user wrote them: the layer that understands a value names the flag when
 * it rejects it.
 */
import type { CreateRequest, HealthRequest, NetworkRequest, ResourceRequest } from '../api/types.js';
import type { OptionsOf } from './parser.js';

export const RESOURCE_OPTIONS = [
  { name: 'memory', short: 'm', type: 'string', help: 'Memory limit' },
  { name: 'memory-swap', type: 'string', help: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { name: 'memory-reservation', type: 'string', help: 'Memory soft limit' },
  { name: 'cpus', type: 'string', help: 'Number of CPUs' },
  { name: 'cpu-shares', short: 'c', type: 'number', help: 'CPU shares (relative weight)' },
  { name: 'cpu-period', type: 'number', help: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { name: 'cpu-quota', type: 'number', help: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { name: 'cpuset-cpus', type: 'string', help: 'CPUs in which to allow execution (0-3, 0,1)' },
  { name: 'cpuset-mems', type: 'string', help: 'MEMs in which to allow execution (0-3, 0,1)' },
  { name: 'pids-limit', type: 'number', help: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'blkio-weight', type: 'number', help: 'Block IO (relative weight), between 10 and 1000, or 0 to disable' },
] as const;

export const CREATE_OPTIONS = [
  { name: 'interactive', short: 'i', type: 'bool', help: 'Keep STDIN open even if not attached' },
  { name: 'tty', short: 't', type: 'bool', help: 'Allocate a pseudo-TTY' },
  { name: 'rm', type: 'bool', help: 'Automatically remove the container when it exits' },
  { name: 'name', type: 'string', help: 'Assign a name to the container' },
  { name: 'pull', type: 'string', help: 'Pull image before running ("always", "missing", "never") (default "missing")' },
  { name: 'env', short: 'e', type: 'list', help: 'Set environment variables' },
  { name: 'env-file', type: 'list', help: 'Read in a file of environment variables' },
  { name: 'workdir', short: 'w', type: 'string', help: 'Working directory inside the container' },
  { name: 'user', short: 'u', type: 'string', help: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'entrypoint', type: 'string', help: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'hostname', short: 'h', type: 'string', help: 'Container host name' },
  { name: 'domainname', type: 'string', help: 'Container NIS domain name' },
  { name: 'label', short: 'l', type: 'map', help: 'Set meta data on a container' },
  { name: 'label-file', type: 'list', help: 'Read in a line delimited file of labels' },
  { name: 'annotation', type: 'map', help: 'Add an annotation to the container (passed through to the OCI runtime)' },
  { name: 'cidfile', type: 'string', help: 'Write the container ID to the file' },
  { name: 'runtime', type: 'string', help: 'Runtime to use for this container' },
  { name: 'log-opt', type: 'map', help: 'Log driver options (max-size, max-file)' },
  { name: 'group-add', type: 'list', help: 'Add additional groups to join' },
  { name: 'oom-score-adj', type: 'number', help: 'Tune host\'s OOM preferences (-1000 to 1000)' },
  { name: 'cgroup-parent', type: 'string', help: 'Optional parent cgroup for the container' },
  { name: 'cgroupns', type: 'string', help: "Cgroup namespace to use (host|private)" },
  { name: 'userns', type: 'string', help: 'User namespace to use (host|auto[:size=N]|private|keep-id)' },
  { name: 'uidmap', type: 'list', help: 'UID map for the user namespace (CONTAINER:HOST:SIZE, repeatable)' },
  { name: 'gidmap', type: 'list', help: 'GID map for the user namespace (CONTAINER:HOST:SIZE, repeatable; default: as --uidmap)' },
  { name: 'expose', type: 'list', help: 'Expose a port or a range of ports' },
  { name: 'privileged', type: 'bool', help: 'Give extended privileges to this container' },
  { name: 'cap-add', type: 'list', help: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'list', help: 'Drop Linux capabilities' },
  { name: 'security-opt', type: 'list', help: 'Security Options' },
  { name: 'read-only', type: 'bool', help: "Mount the container's root filesystem as read only" },
  { name: 'tmpfs', type: 'list', help: 'Mount a tmpfs directory' },
  { name: 'shm-size', type: 'string', help: 'Size of /dev/shm' },
  { name: 'ulimit', type: 'list', help: 'Ulimit options' },
  { name: 'init', type: 'bool', help: 'Run an init inside the container that forwards signals and reaps processes' },
  { name: 'device', type: 'list', help: 'Add a host device to the container' },
  { name: 'pid', type: 'string', help: 'PID namespace to use' },
  { name: 'ipc', type: 'string', help: 'IPC mode to use' },
  { name: 'uts', type: 'string', help: 'UTS namespace to use' },
  { name: 'stop-signal', type: 'string', help: 'Signal to stop the container' },
  { name: 'stop-timeout', type: 'number', help: 'Timeout (in seconds) to stop a container' },
  { name: 'sysctl', type: 'map', help: 'Sysctl options' },
  ...RESOURCE_OPTIONS,
  { name: 'oom-kill-disable', type: 'bool', help: 'Disable OOM Killer' },
  { name: 'device-read-bps', type: 'list', help: 'Limit read rate (bytes per second) from a device' },
  { name: 'device-write-bps', type: 'list', help: 'Limit write rate (bytes per second) to a device' },
  { name: 'volume', short: 'v', type: 'list', help: 'Bind mount a volume: /host:/ctr, NAME:/ctr or /ctr, with :ro|rw, :nocopy, a propagation mode; :z and :Z are accepted and do nothing (no SELinux here)' },
  { name: 'mount', type: 'list', help: 'Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=...,target=...)' },
  { name: 'volumes-from', type: 'list', help: 'Mount volumes from the specified container(s) (CONTAINER[:ro|rw])' },
  { name: 'restart', type: 'string', help: 'Restart policy to apply when a container exits (default "no")' },
  { name: 'network', aliases: ['net'], type: 'list', help: 'Connect a container to a network' },
  { name: 'ip', type: 'string', help: 'IPv4 address (e.g., 172.30.100.104)' },
  { name: 'ip6', type: 'string', help: 'IPv6 address (e.g., 2001:db8::33)' },
  { name: 'mac-address', type: 'string', help: 'Container MAC address (e.g., 92:d0:c6:0a:29:33)' },
  { name: 'network-alias', aliases: ['net-alias'], type: 'list', help: 'Add network-scoped alias for the container' },
  { name: 'publish', short: 'p', type: 'list', help: "Publish a container's port(s) to the host" },
  { name: 'publish-all', short: 'P', type: 'bool', help: 'Publish all exposed ports to random ports' },
  { name: 'dns', type: 'list', help: 'Set custom DNS servers' },
  { name: 'dns-search', type: 'list', help: 'Set custom DNS search domains' },
  { name: 'dns-option', aliases: ['dns-opt'], type: 'list', help: 'Set DNS options' },
  { name: 'add-host', type: 'list', help: 'Add a custom host-to-IP mapping (host:ip)' },
  { name: 'link', type: 'list', help: 'Add link to another container' },
  { name: 'health-cmd', type: 'string', help: 'Command to run to check health' },
  { name: 'health-interval', type: 'string', help: 'Time between running the check (ms|s|m|h) (default 0s)' },
  { name: 'health-timeout', type: 'string', help: 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)' },
  { name: 'health-retries', type: 'number', help: 'Consecutive failures needed to report unhealthy' },
  { name: 'health-start-period', type: 'string', help: 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)' },
  { name: 'health-start-interval', type: 'string', help: 'Time between running the check during the start period (ms|s|m|h) (default 0s)' },
  { name: 'no-healthcheck', type: 'bool', help: 'Disable any container-specified HEALTHCHECK' },
] as const;

export const RUN_OPTIONS = [
  { name: 'detach', short: 'd', type: 'bool', help: 'Run container in background and print container ID' },
  { name: 'attach', short: 'a', type: 'list', help: 'Attach to STDIN, STDOUT or STDERR' },
  { name: 'detach-keys', type: 'string', help: 'Override the key sequence for detaching a container' },
  { name: 'sig-proxy', type: 'bool', default: true, help: 'Proxy received signals to the process (default true)' },
  ...CREATE_OPTIONS,
] as const;

export type CreateOptions = OptionsOf<typeof CREATE_OPTIONS>;
export type ResourceOptions = OptionsOf<typeof RESOURCE_OPTIONS>;

/** `args` is IMAGE [COMMAND] [ARG...]. */
export function createRequest(o: CreateOptions, args: readonly string[]): CreateRequest {
  const [image, ...command] = args;
  return compact<CreateRequest>({
    image: image!,
    pull: o.pull as CreateRequest['pull'],
    command: command.length ? command : undefined,
    // docker: --entrypoint "" clears the image's entrypoint; any other value is one word.
    entrypoint: o.entrypoint === undefined ? undefined : [o.entrypoint],
    name: o.name,
    env: some(clientEnv(o.env)),
    envFiles: some(o.envFile),
    workdir: o.workdir,
    user: o.user,
    tty: o.tty || undefined,
    openStdin: o.interactive || undefined,
    init: o.init || undefined,
    stopSignal: o.stopSignal,
    stopTimeout: o.stopTimeout,
    labels: someMap(o.label),
    labelFiles: some(o.labelFile),
    annotations: someMap(o.annotation),
    cidfile: o.cidfile,
    runtime: o.runtime,
    logOpts: someMap(o.logOpt),
    groupAdd: some(o.groupAdd),
    oomScoreAdj: o.oomScoreAdj,
    cgroupParent: o.cgroupParent,
    cgroupns: o.cgroupns,
    userns: o.userns,
    uidmap: some(o.uidmap),
    gidmap: some(o.gidmap),
    hostname: o.hostname,
    domainname: o.domainname,
    pid: o.pid,
    ipc: o.ipc,
    uts: o.uts,
    privileged: o.privileged || undefined,
    capAdd: some(o.capAdd),
    capDrop: some(o.capDrop),
    securityOpt: some(o.securityOpt),
    readOnly: o.readOnly || undefined,
    tmpfs: some(o.tmpfs),
    shmSize: o.shmSize,
    ulimits: some(o.ulimit),
    devices: some(o.device),
    sysctls: someMap(o.sysctl),
    resources: resourceRequest(o),
    volumes: some(o.volume),
    volumesFrom: some(o.volumesFrom),
    mounts: some(o.mount),
    restart: o.restart,
    autoRemove: o.rm || undefined,
    network: networkRequest(o),
    health: healthRequest(o),
    noHealthcheck: o.noHealthcheck || undefined,
  });
}

function healthRequest(o: CreateOptions): HealthRequest | undefined {
  const h = compact<HealthRequest>({
    cmd: o.healthCmd,
    interval: o.healthInterval,
    timeout: o.healthTimeout,
    retries: o.healthRetries,
    startPeriod: o.healthStartPeriod,
    startInterval: o.healthStartInterval,
  });
  return Object.keys(h).length ? h : undefined;
}

export function resourceRequest(o: ResourceOptions & Partial<Pick<CreateOptions, 'oomKillDisable' | 'deviceReadBps' | 'deviceWriteBps'>>): ResourceRequest | undefined {
  const r = compact<ResourceRequest>({
    memory: o.memory,
    memorySwap: o.memorySwap,
    memoryReservation: o.memoryReservation,
    oomKillDisable: o.oomKillDisable || undefined,
    cpus: o.cpus,
    cpuShares: o.cpuShares,
    cpuPeriod: o.cpuPeriod,
    cpuQuota: o.cpuQuota,
    cpusetCpus: o.cpusetCpus,
    cpusetMems: o.cpusetMems,
    pidsLimit: o.pidsLimit,
    blkioWeight: o.blkioWeight,
    deviceReadBps: some(o.deviceReadBps),
    deviceWriteBps: some(o.deviceWriteBps),
  });
  return Object.keys(r).length ? r : undefined;
}

function networkRequest(o: CreateOptions): NetworkRequest | undefined {
  const n = compact<NetworkRequest>({
    networks: some(o.network),
    ip: o.ip,
    ip6: o.ip6,
    mac: o.macAddress,
    aliases: some(o.networkAlias),
    publish: some(o.publish),
    publishAll: o.publishAll || undefined,
    dns: some(o.dns),
    dnsSearch: some(o.dnsSearch),
    dnsOption: some(o.dnsOption),
    addHost: some(o.addHost),
    links: some(o.link),
    expose: some(o.expose),
  });
  return Object.keys(n).length ? n : undefined;
}

function some(list: readonly string[] | undefined): string[] | undefined {
  return list?.length ? [...list] : undefined;
}

function someMap(map: Record<string, string> | undefined): Record<string, string> | undefined {
  return map && Object.keys(map).length ? { ...map } : undefined;
}

/** Drops undefined fields so that requests compare and print cleanly. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * docker run -e NAME (no '=') takes NAME's value from the client's environment and drops it when unset;
 * only the CLI sees that environment, so it resolves it here.
 */
export function clientEnv(list: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  return list?.flatMap((e) => (e.includes('=') ? [e] : env[e] !== undefined ? [`${e}=${env[e]}`] : []));
}
