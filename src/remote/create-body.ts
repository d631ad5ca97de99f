/**
 * Berth's CreateRequest as Docker's `POST /containers/create` body (Config + HostConfig + NetworkingConfig)
 * and `?name=`: the inverse of src/service/containers-create.ts, so that a request made here becomes the
 * same request on the remote engine. A field the body cannot carry (a file only this machine has, a form
 * the API has no field for) is refused, naming the flag, never dropped.
 */
import type { CreateRequest, HealthRequest, NetworkRequest, ResourceRequest } from '../types.js';
import { InvalidArgumentError } from '../errors.js';
import { parseBytes } from '../bundle/units.js';
import { parseEnvFile } from '../bundle/index.js';
import { parseLabelFile, readUserFile } from '../container/index.js';
import { parsePublish } from '../network/index.js';
import { parseDuration } from '../util/time.js';

type Json = Record<string, unknown>;

function cannot(flag: string, why: string, hint = 'leave it out, or run the command on the remote host itself'): InvalidArgumentError {
  return new InvalidArgumentError(flag, `${why} (not supported on a remote host yet)`, hint);
}

/** Leaves out undefined fields and empty objects, as a client leaves fields it does not set. */
function compact(o: Json): Json | undefined {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (v && typeof v === 'object' && !Array.isArray(v) && !Object.keys(v).length) continue;
    out[k] = v;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * --env-file and --label-file read on this machine, as the docker CLI reads them, and folded into -e and -l
 * in the order the local engine merges them (the files first, the flags win): the remote never reads its
 * own disk for them. --cidfile and --pull are the caller's (RemoteEngine's create), on this side too.
 */
export async function withLocalFiles(req: CreateRequest): Promise<CreateRequest> {
  const { envFiles, labelFiles, ...rest } = req;
  const texts = await Promise.all((envFiles ?? []).map((f) => readUserFile(f, '--env-file')));
  const fileLabels: Record<string, string> = {};
  for (const file of labelFiles ?? []) Object.assign(fileLabels, parseLabelFile(await readUserFile(file, '--label-file'), file));
  const env = [...texts.flatMap((t) => parseEnvFile(t)), ...(req.env ?? [])];
  const labels = { ...fileLabels, ...(req.labels ?? {}) };
  return { ...rest, ...(env.length ? { env } : {}), ...(Object.keys(labels).length ? { labels } : {}) };
}

/** The body of a request whose local files were read (withLocalFiles); `pull` and `cidfile` are not the body's. */
export function createBodyOf(req: CreateRequest): { name?: string; body: Json } {
  if (req.envFiles?.length) throw cannot('--env-file', 'the file is on this machine: read it first (withLocalFiles)', 'pass the variables with -e instead');
  if (req.labelFiles?.length) throw cannot('--label-file', 'the file is on this machine: read it first (withLocalFiles)', 'pass the labels with -l instead');
  const attach = req.attach && Object.fromEntries(['Stdin', 'Stdout', 'Stderr'].map((s) => [`Attach${s}`, req.attach!.includes(s.toLowerCase())]));
  const body: Json = {
    Image: req.image,
    Cmd: req.command,
    Entrypoint: req.entrypoint,
    Hostname: req.hostname,
    Domainname: req.domainname,
    User: req.user,
    Env: req.env,
    WorkingDir: req.workdir,
    Labels: req.labels,
    Tty: req.tty,
    OpenStdin: req.openStdin,
    // docker run -i: the container's stdin closes when the attached client's ends.
    StdinOnce: req.openStdin && req.attach?.includes('stdin') ? true : undefined,
    StopSignal: req.stopSignal,
    StopTimeout: req.stopTimeout,
    ...attach,
    ...healthOf(req),
    ExposedPorts: req.network?.expose && Object.fromEntries(req.network.expose.map((p) => [p, {}])),
    HostConfig: hostConfigOf(req),
    NetworkingConfig: networkingOf(req.network),
  };
  return { ...(req.name ? { name: req.name } : {}), body: compact(body)! };
}

function healthOf(req: CreateRequest): Json {
  if (req.noHealthcheck) return { Healthcheck: { Test: ['NONE'] } };
  const h: HealthRequest | undefined = req.health;
  if (!h) return {};
  const ns = (field: string, v: string | number | undefined) => (v === undefined ? undefined : parseDuration(field, v));
  return {
    Healthcheck: compact({
      Test: h.cmd !== undefined ? ['CMD-SHELL', h.cmd] : h.test,
      Interval: ns('--health-interval', h.interval),
      Timeout: ns('--health-timeout', h.timeout),
      StartPeriod: ns('--health-start-period', h.startPeriod),
      StartInterval: ns('--health-start-interval', h.startInterval),
      Retries: h.retries,
    }),
  };
}

function hostConfigOf(req: CreateRequest): Json | undefined {
  const n = req.network;
  return compact({
    Binds: req.volumes,
    VolumesFrom: req.volumesFrom,
    Mounts: req.mounts?.map(mountOf),
    Tmpfs: req.tmpfs && Object.fromEntries(req.tmpfs.map((t) => {
      const i = t.indexOf(':');
      return i < 0 ? [t, ''] : [t.slice(0, i), t.slice(i + 1)];
    })),
    AutoRemove: req.autoRemove,
    RestartPolicy: req.restart ? restartOf(req.restart) : undefined,
    Annotations: req.annotations,
    LogConfig: req.logOpts ? { Type: 'json-file', Config: req.logOpts } : undefined,
    Runtime: req.runtime,
    Init: req.init,
    PidMode: req.pid,
    IpcMode: req.ipc,
    UTSMode: req.uts,
    CgroupnsMode: req.cgroupns,
    Privileged: req.privileged,
    CapAdd: req.capAdd,
    CapDrop: req.capDrop,
    SecurityOpt: req.securityOpt,
    ReadonlyRootfs: req.readOnly,
    ShmSize: req.shmSize === undefined ? undefined : parseBytes('--shm-size', req.shmSize),
    Ulimits: req.ulimits?.map(ulimitOf),
    Devices: req.devices?.map(deviceOf),
    Sysctls: req.sysctls,
    GroupAdd: req.groupAdd,
    OomScoreAdj: req.oomScoreAdj,
    CgroupParent: req.cgroupParent,
    ...resourcesOf(req.resources),
    NetworkMode: n?.networks?.[0],
    PortBindings: n?.publish ? portBindingsOf(n.publish) : undefined,
    PublishAllPorts: n?.publishAll,
    Dns: n?.dns,
    DnsSearch: n?.dnsSearch,
    DnsOptions: n?.dnsOption,
    ExtraHosts: n?.addHost,
    Links: n?.links,
  });
}

export function restartOf(policy: string): Json {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(policy);
  if (!m || (m[2] && m[1] !== 'on-failure')) throw new InvalidArgumentError('--restart', `"${policy}" is not a restart policy`, 'use no, always, unless-stopped or on-failure[:N]');
  return { Name: m[1], MaximumRetryCount: m[2] ? Number(m[2]) : 0 };
}

function ulimitOf(u: string): Json {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(u);
  if (!m) throw new InvalidArgumentError('--ulimit', `"${u}" is not NAME=SOFT[:HARD]`);
  return { Name: m[1], Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) };
}

function deviceOf(d: string): Json {
  const [from, to, perms] = d.split(':');
  return { PathOnHost: from, PathInContainer: to || from, CgroupPermissions: perms || 'rwm' };
}

/** Docker's resource fields (HostConfig's, and UpdateConfig's, which are the same) from Berth's request. */
export function resourcesOf(r: ResourceRequest | undefined): Json {
  if (!r) return {};
  const bytes = (f: string, v: string | number | undefined) => (v === undefined ? undefined : parseBytes(f, v));
  const cpus = r.cpus === undefined ? undefined : Number(r.cpus);
  if (cpus !== undefined && !(cpus > 0)) throw new InvalidArgumentError('--cpus', `"${r.cpus}" is not a positive number of CPUs`);
  const rates = (f: string, list: string[] | undefined) => list?.map((x) => {
    const i = x.lastIndexOf(':');
    if (i <= 0) throw new InvalidArgumentError(f, `"${x}" is not DEVICE:RATE`);
    return { Path: x.slice(0, i), Rate: parseBytes(f, x.slice(i + 1)) };
  });
  return {
    Memory: bytes('--memory', r.memory),
    // -1: unlimited swap, which parseBytes does not read
    MemorySwap: r.memorySwap === -1 || r.memorySwap === '-1' ? -1 : bytes('--memory-swap', r.memorySwap),
    MemoryReservation: bytes('--memory-reservation', r.memoryReservation),
    OomKillDisable: r.oomKillDisable,
    NanoCpus: cpus === undefined ? undefined : Math.round(cpus * 1e9),
    CpuShares: r.cpuShares,
    CpuPeriod: r.cpuPeriod,
    CpuQuota: r.cpuQuota,
    CpusetCpus: r.cpusetCpus,
    CpusetMems: r.cpusetMems,
    PidsLimit: r.pidsLimit,
    BlkioWeight: r.blkioWeight,
    BlkioDeviceReadBps: rates('--device-read-bps', r.deviceReadBps),
    BlkioDeviceWriteBps: rates('--device-write-bps', r.deviceWriteBps),
  };
}

/** `--mount` CSV as a Mounts entry: the common keys; any other is refused rather than lost. */
function mountOf(spec: string): Json {
  const m: Json = {};
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    switch (key) {
      case 'type': m.Type = value; break;
      case 'source': case 'src': m.Source = value; break;
      case 'target': case 'destination': case 'dst': m.Target = value; break;
      case 'readonly': case 'ro': m.ReadOnly = value === undefined || value === 'true' || value === '1'; break;
      case 'bind-propagation': m.BindOptions = { Propagation: value }; break;
      case 'volume-nocopy': m.VolumeOptions = { NoCopy: true }; break;
      default: throw cannot('--mount', `the option "${key}" in "${spec}" is not carried`, 'use -v, or type, source, target, readonly, bind-propagation and volume-nocopy only');
    }
  }
  if (!m.Type) m.Type = 'volume';
  return m;
}

/**
 * `-p` as PortBindings, parsed (and refused) as locally: a container range becomes one binding a port, a
 * host range for one port stays Docker's "FIRST-LAST" HostPort (any free port of it).
 */
function portBindingsOf(publish: string[]): Json {
  const out: Record<string, Json[]> = {};
  for (const r of publish.flatMap(parsePublish)) {
    const h = r.hostPorts;
    const hostPort = !h ? '' : h.first === h.last ? String(h.first) : `${h.first}-${h.last}`;
    (out[`${r.containerPort}/${r.protocol}`] ??= []).push({ HostIp: r.hostIp === '0.0.0.0' ? '' : r.hostIp, HostPort: hostPort });
  }
  return out;
}

function networkingOf(n: NetworkRequest | undefined): Json | undefined {
  if (!n) return undefined;
  const [primary = 'bridge', ...others] = n.networks ?? [];
  const ep = compact({
    Aliases: n.aliases,
    MacAddress: n.mac,
    IPAMConfig: compact({ IPv4Address: n.ip, IPv6Address: n.ip6 }),
  });
  const endpoints: Json = {};
  if (ep) endpoints[primary] = ep;
  for (const o of others) endpoints[o] = {};
  return Object.keys(endpoints).length ? { EndpointsConfig: endpoints } : undefined;
}
