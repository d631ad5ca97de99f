/**
 * `POST /containers/create`: Docker's container config (Config, HostConfig, NetworkingConfig) as Berth's
 * CreateRequest, in the same words `berth create` flags become (src/cli/create.ts), so that the same request
 * makes the same container from either side. Every field is checked for its type first; a field Berth does
 * not implement is accepted only at its zero value (clients send every field, mostly zeros), and refused
 * with 400 naming it otherwise, never accepted and ignored.
 */
import type { CreateRequest, HealthRequest, NetworkRequest, ResourceRequest } from '../api/types.js';
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { parseMountFlag, parseVolumeFlag } from '../volume/index.js';
import { ApiError } from './errors.js';

type Json = Record<string, unknown>;

/** Fields the service reads itself, or that carry nothing for Berth, even when set (see `createRequestOf`). */
const CONFIG_FIELDS = new Set([
  'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce',
  'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'MacAddress', 'Labels', 'StopSignal',
  'StopTimeout', 'HostConfig', 'NetworkingConfig',
]);

const HOST_FIELDS = new Set([
  'Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'VolumesFrom', 'ConsoleSize',
  'Annotations', 'CapAdd', 'CapDrop', 'CgroupnsMode', 'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'GroupAdd', 'IpcMode', 'Links',
  'OomScoreAdj', 'PidMode', 'Privileged', 'PublishAllPorts', 'ReadonlyRootfs', 'SecurityOpt', 'Tmpfs', 'UTSMode', 'UsernsMode', 'ShmSize', 'Sysctls',
  'Runtime', 'Isolation', 'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps',
  'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems', 'Devices', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'OomKillDisable',
  'PidsLimit', 'Ulimits', 'Mounts', 'Init',
]);

const ENDPOINT_FIELDS = new Set(['IPAMConfig', 'Aliases', 'MacAddress']);

/** Docker's zero values: what a client sends for a field it leaves alone. */
function isZero(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v as Json).every(isZero);
  return false;
}

function unsupported(field: string): ApiError {
  return new ApiError(400, `${field} is not supported yet by Berth; leave it unset`);
}

function refuseOthers(obj: Json, known: ReadonlySet<string>, prefix: string, zeroAlso: Readonly<Record<string, unknown>> = {}): void {
  for (const [k, v] of Object.entries(obj)) {
    if (known.has(k)) continue;
    // Some fields have a non-zero default clients send (MemorySwappiness -1).
    if (isZero(v) || (k in zeroAlso && zeroAlso[k] === v)) continue;
    throw unsupported(`${prefix}${k}`);
  }
}

// ---------------------------------------------------------------- typed reads, each naming its field

function typeError(field: string, what: string): ApiError {
  return new ApiError(400, `invalid ${field}: it must be ${what}`);
}

function obj(o: Json, key: string, field: string): Json | undefined {
  const v = o[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw typeError(field, 'a JSON object');
  return v as Json;
}

function str(o: Json, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === null || v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw typeError(field, 'a string');
  return v;
}

function bool(o: Json, key: string, field: string): boolean | undefined {
  const v = o[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'boolean') throw typeError(field, 'true or false');
  return v;
}

function int(o: Json, key: string, field: string): number | undefined {
  const v = o[key];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw typeError(field, 'an integer');
  return v;
}

/** A positive integer, 0 meaning "not set" as in Docker's HostConfig. */
function size(o: Json, key: string, field: string): number | undefined {
  const v = int(o, key, field);
  return v ? v : undefined;
}

function strings(o: Json, key: string, field: string): string[] | undefined {
  const v = o[key];
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeError(field, 'an array of strings');
  return v.length ? [...(v as string[])] : undefined;
}

/** Docker's StrSlice (Cmd, Entrypoint, Healthcheck.Test): a string is a one-word list. */
function strSlice(o: Json, key: string, field: string): string[] | undefined {
  const v = o[key];
  if (typeof v === 'string') return [v];
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeError(field, 'a string or an array of strings');
  return [...(v as string[])];
}

function stringMap(o: Json, key: string, field: string): Record<string, string> | undefined {
  const m = obj(o, key, field);
  if (!m) return undefined;
  for (const [k, v] of Object.entries(m)) if (typeof v !== 'string') throw typeError(`${field}["${k}"]`, 'a string');
  return Object.keys(m).length ? { ...(m as Record<string, string>) } : undefined;
}

/** `{"80/tcp": {}}` maps (ExposedPorts, Volumes): their keys. */
function keySet(o: Json, key: string, field: string): string[] | undefined {
  const m = obj(o, key, field);
  return m && Object.keys(m).length ? Object.keys(m) : undefined;
}

function list(o: Json, key: string, field: string): Json[] {
  const v = o[key];
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => x === null || typeof x !== 'object' || Array.isArray(x))) throw typeError(field, 'an array of JSON objects');
  return v as Json[];
}

function nonEmpty<T>(a: T[]): T[] | undefined {
  return a.length ? a : undefined;
}

function compact<T extends object>(o: T): T | undefined {
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return Object.keys(out).length ? out : undefined;
}

// ---------------------------------------------------------------- the translation

/** The create body, with `?name=`, as the request `berth create` would make (pulls are the client's: `never`). */
export function createRequestOf(body: Json, name: string | undefined): CreateRequest {
  refuseOthers(body, CONFIG_FIELDS, '');
  const host = obj(body, 'HostConfig', 'HostConfig') ?? {};
  refuseOthers(host, HOST_FIELDS, 'HostConfig.', { MemorySwappiness: -1, Isolation: 'default' });
  const image = str(body, 'Image', 'Image');
  if (!image) throw new ApiError(400, 'Config.Image is empty: name the image to create the container from');
  if (bool(body, 'ArgsEscaped', 'ArgsEscaped')) throw unsupported('ArgsEscaped'); // a Windows-only field

  const entrypoint = strSlice(body, 'Entrypoint', 'Entrypoint');
  const command = strSlice(body, 'Cmd', 'Cmd');
  const req: CreateRequest = {
    image,
    // The docker CLI pulls on the 404 it gets here; the service never pulls behind its back.
    pull: 'never',
    command: command?.length ? command : undefined,
    entrypoint,
    name: name ? name.replace(/^\//, '') : undefined,
    ...simpleFields(body, '', CONFIG_SIMPLE),
    attach: attachOf(body),
    // 0 is a stop without grace; null, the default
    stopTimeout: int(body, 'StopTimeout', 'StopTimeout'),
    ...healthOf(body),
    ...hostConfigOf(host),
  };
  // StdinOnce (docker run -i) closes the container's stdin when the first attached client's stdin ends:
  // what Berth's attach does (conmon closes it; src/runtime/attach.ts).
  bool(body, 'StdinOnce', 'StdinOnce');
  // Config.Volumes is an image VOLUME given at create: a volume, a bind or a tmpfs at the same path takes
  // its place (compose sends both `Volumes: {"/data": {}}` and `Binds: ["vol:/data"]`).
  const anonymous = keySet(body, 'Volumes', 'Volumes');
  if (anonymous) {
    const taken = new Set([
      ...(req.volumes ?? []).map((v) => parseVolumeFlag(v).destination),
      ...(req.mounts ?? []).map((m) => parseMountFlag(m).destination),
      ...(req.tmpfs ?? []).map((t) => t.split(':')[0]!),
    ].map((d) => path.posix.normalize(d)));
    const left = anonymous.filter((v) => !taken.has(path.posix.normalize(v)));
    if (left.length) req.volumes = [...(req.volumes ?? []), ...left];
  }
  const network = networkOf(body, host);
  if (network) req.network = network;
  return compact(req)!;
}

/** Docker's AttachStd*: `run -d` sends all false (Berth's `attach: []`). */
function attachOf(body: Json): string[] | undefined {
  const streams = (['Stdin', 'Stdout', 'Stderr'] as const).filter((s) => bool(body, `Attach${s}`, `Attach${s}`));
  if (body.AttachStdin === undefined && body.AttachStdout === undefined && body.AttachStderr === undefined) return undefined;
  return streams.map((s) => s.toLowerCase());
}

function healthOf(body: Json): Pick<CreateRequest, 'health' | 'noHealthcheck'> {
  const h = obj(body, 'Healthcheck', 'Healthcheck');
  if (!h) return {};
  refuseOthers(h, new Set(['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']), 'Healthcheck.');
  const test = strSlice(h, 'Test', 'Healthcheck.Test');
  if (test?.[0] === 'NONE') return { noHealthcheck: true };
  const health = compact<HealthRequest>({
    test: test?.length ? test : undefined,
    // nanoseconds, as Berth's API takes them; 0 inherits the image's value
    interval: size(h, 'Interval', 'Healthcheck.Interval'),
    timeout: size(h, 'Timeout', 'Healthcheck.Timeout'),
    startPeriod: size(h, 'StartPeriod', 'Healthcheck.StartPeriod'),
    startInterval: size(h, 'StartInterval', 'Healthcheck.StartInterval'),
    retries: size(h, 'Retries', 'Healthcheck.Retries'),
  });
  return health ? { health } : {};
}

type Reader = 'str' | 'strings' | 'bool' | 'int' | 'size' | 'map';
const READERS: Record<Reader, (o: Json, key: string, field: string) => unknown> = {
  str, strings, size, map: stringMap,
  // false and 0 are Docker's "not set": Berth's requests leave such fields out, as `berth create` does
  bool: (o, k, f) => bool(o, k, f) || undefined,
  int: (o, k, f) => int(o, k, f) || undefined,
};

/** HostConfig fields that are one value in Berth's request under another name: [request field, API field, type]. */
const HOST_SIMPLE: [keyof CreateRequest, string, Reader][] = [
  ['volumes', 'Binds', 'strings'], ['volumesFrom', 'VolumesFrom', 'strings'], ['autoRemove', 'AutoRemove', 'bool'],
  ['annotations', 'Annotations', 'map'], ['capAdd', 'CapAdd', 'strings'], ['capDrop', 'CapDrop', 'strings'],
  ['cgroupns', 'CgroupnsMode', 'str'], ['groupAdd', 'GroupAdd', 'strings'], ['ipc', 'IpcMode', 'str'], ['pid', 'PidMode', 'str'],
  ['uts', 'UTSMode', 'str'], ['oomScoreAdj', 'OomScoreAdj', 'int'], ['privileged', 'Privileged', 'bool'],
  ['readOnly', 'ReadonlyRootfs', 'bool'], ['securityOpt', 'SecurityOpt', 'strings'], ['shmSize', 'ShmSize', 'size'],
  ['sysctls', 'Sysctls', 'map'], ['runtime', 'Runtime', 'str'], ['cgroupParent', 'CgroupParent', 'str'], ['init', 'Init', 'bool'],
  // Docker's values are "" and "host"; podman's API words (auto, private) go through the same parse.
  ['userns', 'UsernsMode', 'str'],
];

const CONFIG_SIMPLE: [keyof CreateRequest, string, Reader][] = [
  ['hostname', 'Hostname', 'str'], ['domainname', 'Domainname', 'str'], ['user', 'User', 'str'], ['env', 'Env', 'strings'],
  ['workdir', 'WorkingDir', 'str'], ['labels', 'Labels', 'map'], ['tty', 'Tty', 'bool'], ['openStdin', 'OpenStdin', 'bool'],
  ['stopSignal', 'StopSignal', 'str'],
];

function simpleFields<T>(o: Json, prefix: string, table: readonly [keyof T, string, Reader][]): Partial<T> {
  return Object.fromEntries(table.map(([to, from, type]) => [to, READERS[type](o, from, `${prefix}${from}`)])) as Partial<T>;
}

function hostConfigOf(h: Json): Partial<CreateRequest> {
  const f = (k: string) => `HostConfig.${k}`;
  const restart = restartOf(h);
  const log = obj(h, 'LogConfig', f('LogConfig'));
  if (log) {
    refuseOthers(log, new Set(['Type', 'Config']), 'HostConfig.LogConfig.');
    const type = str(log, 'Type', f('LogConfig.Type'));
    // Berth's log is conmon's file, read by `logs` as json-file's is: the other drivers send logs elsewhere.
    if (type && !['json-file', 'k8s-file'].includes(type)) throw new ApiError(400, `HostConfig.LogConfig.Type "${type}" is not supported yet by Berth; use json-file (the default)`);
  }
  const isolation = str(h, 'Isolation', f('Isolation'));
  if (isolation && isolation !== 'default') throw unsupported('HostConfig.Isolation');
  // ContainerIDFile is written by the client (the docker CLI makes the file before it calls create), as
  // Docker's daemon leaves it; ConsoleSize is the terminal's first size, which the client sets again with
  // a resize once attached.
  str(h, 'ContainerIDFile', f('ContainerIDFile'));
  return {
    ...simpleFields(h, 'HostConfig.', HOST_SIMPLE),
    mounts: mountsOf(h),
    tmpfs: tmpfsOf(h),
    restart,
    logOpts: log ? stringMap(log, 'Config', f('LogConfig.Config')) : undefined,
    ulimits: nonEmpty(list(h, 'Ulimits', f('Ulimits')).map((u, i) => {
      const name = str(u, 'Name', f(`Ulimits[${i}].Name`));
      if (!name) throw new ApiError(400, `invalid HostConfig.Ulimits[${i}]: Name is empty`);
      return `${name}=${int(u, 'Soft', f(`Ulimits[${i}].Soft`)) ?? 0}:${int(u, 'Hard', f(`Ulimits[${i}].Hard`)) ?? 0}`;
    })),
    devices: nonEmpty(list(h, 'Devices', f('Devices')).map((d, i) => {
      const from = str(d, 'PathOnHost', f(`Devices[${i}].PathOnHost`));
      if (!from) throw new ApiError(400, `invalid HostConfig.Devices[${i}]: PathOnHost is empty`);
      const to = str(d, 'PathInContainer', f(`Devices[${i}].PathInContainer`)) ?? from;
      const perms = str(d, 'CgroupPermissions', f(`Devices[${i}].CgroupPermissions`)) ?? 'rwm';
      return `${from}:${to}:${perms}`;
    })),
    resources: resourcesOf(h),
  };
}

function restartOf(h: Json): string | undefined {
  const p = obj(h, 'RestartPolicy', 'HostConfig.RestartPolicy');
  if (!p) return undefined;
  refuseOthers(p, new Set(['Name', 'MaximumRetryCount']), 'HostConfig.RestartPolicy.');
  const name = str(p, 'Name', 'HostConfig.RestartPolicy.Name');
  const max = int(p, 'MaximumRetryCount', 'HostConfig.RestartPolicy.MaximumRetryCount');
  if (!name || name === 'no') {
    if (max) throw new ApiError(400, 'invalid HostConfig.RestartPolicy: MaximumRetryCount needs the on-failure policy');
    return undefined;
  }
  return name === 'on-failure' && max ? `on-failure:${max}` : name;
}

function resourcesOf(h: Json): ResourceRequest | undefined {
  const f = (k: string) => `HostConfig.${k}`;
  const nano = size(h, 'NanoCpus', f('NanoCpus'));
  const rates = (key: string) => list(h, key, f(key)).map((d, i) => {
    const p = str(d, 'Path', f(`${key}[${i}].Path`));
    if (!p) throw new ApiError(400, `invalid HostConfig.${key}[${i}]: Path is empty`);
    return `${p}:${int(d, 'Rate', f(`${key}[${i}].Rate`)) ?? 0}`;
  });
  const swappiness = int(h, 'MemorySwappiness', f('MemorySwappiness'));
  if (swappiness !== undefined && swappiness !== -1) throw unsupported('HostConfig.MemorySwappiness');
  const pids = int(h, 'PidsLimit', f('PidsLimit'));
  const read = nonEmpty(rates('BlkioDeviceReadBps'));
  const write = nonEmpty(rates('BlkioDeviceWriteBps'));
  return compact<ResourceRequest>({
    memory: size(h, 'Memory', f('Memory')),
    // -1 is unlimited swap, as with --memory-swap -1
    memorySwap: int(h, 'MemorySwap', f('MemorySwap')) || undefined,
    memoryReservation: size(h, 'MemoryReservation', f('MemoryReservation')),
    oomKillDisable: bool(h, 'OomKillDisable', f('OomKillDisable')) || undefined,
    cpus: nano ? String(nano / 1e9) : undefined,
    cpuShares: size(h, 'CpuShares', f('CpuShares')),
    cpuPeriod: size(h, 'CpuPeriod', f('CpuPeriod')),
    cpuQuota: size(h, 'CpuQuota', f('CpuQuota')),
    cpusetCpus: str(h, 'CpusetCpus', f('CpusetCpus')),
    cpusetMems: str(h, 'CpusetMems', f('CpusetMems')),
    // Docker: 0 and null leave the default; -1 is unlimited
    pidsLimit: pids ? pids : undefined,
    blkioWeight: size(h, 'BlkioWeight', f('BlkioWeight')),
    deviceReadBps: read,
    deviceWriteBps: write,
  });
}

/** HostConfig.Mounts as `--mount` CSV, which the volume layer parses and checks. */
function mountsOf(h: Json): string[] | undefined {
  return nonEmpty(list(h, 'Mounts', 'HostConfig.Mounts').map((m, i) => {
    const f = (k: string) => `HostConfig.Mounts[${i}].${k}`;
    refuseOthers(m, new Set(['Type', 'Source', 'Target', 'ReadOnly', 'Consistency', 'BindOptions', 'VolumeOptions', 'TmpfsOptions']), `HostConfig.Mounts[${i}].`);
    const fields: string[] = [`type=${str(m, 'Type', f('Type')) ?? 'volume'}`];
    const add = (k: string, v: string | undefined) => {
      if (v === undefined) return;
      if (v.includes('"')) throw new ApiError(400, `invalid ${f(k)}: a double quote is not allowed`);
      fields.push(/[,=]/.test(v) ? `"${k.toLowerCase()}=${v}"` : `${k.toLowerCase()}=${v}`);
    };
    add('Source', str(m, 'Source', f('Source')));
    add('Target', str(m, 'Target', f('Target')));
    if (bool(m, 'ReadOnly', f('ReadOnly'))) fields.push('readonly');
    const bind = obj(m, 'BindOptions', f('BindOptions'));
    if (bind) {
      refuseOthers(bind, new Set(['Propagation', 'NonRecursive']), `HostConfig.Mounts[${i}].BindOptions.`);
      const prop = str(bind, 'Propagation', f('BindOptions.Propagation'));
      if (prop) fields.push(`bind-propagation=${prop}`);
      if (bool(bind, 'NonRecursive', f('BindOptions.NonRecursive'))) fields.push('bind-nonrecursive');
    }
    const vol = obj(m, 'VolumeOptions', f('VolumeOptions'));
    if (vol) {
      refuseOthers(vol, new Set(['NoCopy', 'Labels', 'DriverConfig']), `HostConfig.Mounts[${i}].VolumeOptions.`);
      if (bool(vol, 'NoCopy', f('VolumeOptions.NoCopy'))) fields.push('volume-nocopy');
      for (const [k, v] of Object.entries(stringMap(vol, 'Labels', f('VolumeOptions.Labels')) ?? {})) add('volume-label', `${k}=${v}`);
      const driver = obj(vol, 'DriverConfig', f('VolumeOptions.DriverConfig'));
      if (driver) {
        add('volume-driver', str(driver, 'Name', f('VolumeOptions.DriverConfig.Name')));
        for (const [k, v] of Object.entries(stringMap(driver, 'Options', f('VolumeOptions.DriverConfig.Options')) ?? {})) add('volume-opt', `${k}=${v}`);
      }
    }
    const tmpfs = obj(m, 'TmpfsOptions', f('TmpfsOptions'));
    if (tmpfs) {
      refuseOthers(tmpfs, new Set(['SizeBytes', 'Mode']), `HostConfig.Mounts[${i}].TmpfsOptions.`);
      const bytes = size(tmpfs, 'SizeBytes', f('TmpfsOptions.SizeBytes'));
      if (bytes) fields.push(`tmpfs-size=${bytes}`);
      const mode = size(tmpfs, 'Mode', f('TmpfsOptions.Mode'));
      if (mode) fields.push(`tmpfs-mode=${mode.toString(8)}`);
    }
    return fields.join(',');
  }));
}

function tmpfsOf(h: Json): string[] | undefined {
  const m = stringMap(h, 'Tmpfs', 'HostConfig.Tmpfs');
  return m ? Object.entries(m).map(([p, opts]) => (opts ? `${p}:${opts}` : p)) : undefined;
}

/**
 * NetworkMode and NetworkingConfig.EndpointsConfig as `--network`, `--network-alias`, `--ip`: the mode is the
 * primary network; other endpoints join after it. Berth's aliases and addresses are per request, so they
 * may be given for the primary network only.
 */
function networkOf(body: Json, h: Json): NetworkRequest | undefined {
  const mode = str(h, 'NetworkMode', 'HostConfig.NetworkMode');
  const primary = !mode || mode === 'default' ? 'bridge' : mode;
  const nc = obj(body, 'NetworkingConfig', 'NetworkingConfig');
  if (nc) refuseOthers(nc, new Set(['EndpointsConfig']), 'NetworkingConfig.');
  const endpoints = (nc && obj(nc, 'EndpointsConfig', 'NetworkingConfig.EndpointsConfig')) ?? {};
  const networks = [primary];
  const n: NetworkRequest = {};
  for (const [net, raw] of Object.entries(endpoints)) {
    const f = (k: string) => `NetworkingConfig.EndpointsConfig["${net}"].${k}`;
    if (raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) throw typeError(`NetworkingConfig.EndpointsConfig["${net}"]`, 'a JSON object');
    const ep = (raw ?? {}) as Json;
    // Output fields (NetworkID, IPAddress, ...) that clients echo back at their zero values.
    refuseOthers(ep, ENDPOINT_FIELDS, `NetworkingConfig.EndpointsConfig["${net}"].`);
    const isPrimary = net === primary || (net === 'default' && primary === 'bridge');
    if (!isPrimary) networks.push(net);
    const aliases = strings(ep, 'Aliases', f('Aliases'));
    const ipam = obj(ep, 'IPAMConfig', f('IPAMConfig'));
    if (ipam) refuseOthers(ipam, new Set(['IPv4Address', 'IPv6Address']), `NetworkingConfig.EndpointsConfig["${net}"].IPAMConfig.`);
    const ip = ipam && str(ipam, 'IPv4Address', f('IPAMConfig.IPv4Address'));
    const ip6 = ipam && str(ipam, 'IPv6Address', f('IPAMConfig.IPv6Address'));
    const mac = str(ep, 'MacAddress', f('MacAddress'));
    if (!isPrimary && (aliases || ip || ip6 || mac)) {
      throw new ApiError(400, `${f(aliases ? 'Aliases' : mac ? 'MacAddress' : 'IPAMConfig')} is not supported yet by Berth for a network other than the primary one (${primary}); connect it after create`);
    }
    Object.assign(n, compact({ aliases, ip, ip6, mac }) ?? {});
  }
  const configMac = str(body, 'MacAddress', 'MacAddress');
  if (configMac) n.mac = configMac;
  const publish: string[] = [];
  for (const [port, binds] of Object.entries(obj(h, 'PortBindings', 'HostConfig.PortBindings') ?? {})) {
    if (binds === null) continue;
    if (!Array.isArray(binds)) throw typeError(`HostConfig.PortBindings["${port}"]`, 'an array of {HostIp, HostPort}');
    for (const [i, b] of (binds as unknown[]).entries()) {
      if (b === null || typeof b !== 'object' || Array.isArray(b)) throw typeError(`HostConfig.PortBindings["${port}"][${i}]`, 'a {HostIp, HostPort} object');
      const ip = str(b as Json, 'HostIp', `HostConfig.PortBindings["${port}"][${i}].HostIp`);
      // "0", as "" and absent, is Docker's "any free port" (testcontainers sends it).
      const given = str(b as Json, 'HostPort', `HostConfig.PortBindings["${port}"][${i}].HostPort`) ?? '';
      const hostPort = given === '0' ? '' : given;
      publish.push(ip ? `${ip.includes(':') ? `[${ip}]` : ip}:${hostPort}:${port}` : `${hostPort ? `${hostPort}:` : ''}${port}`);
    }
  }
  const extra = compact<NetworkRequest>({
    networks: networks.length === 1 && primary === 'bridge' ? undefined : networks,
    publish: publish.length ? publish : undefined,
    publishAll: bool(h, 'PublishAllPorts', 'HostConfig.PublishAllPorts') || undefined,
    expose: keySet(body, 'ExposedPorts', 'ExposedPorts'),
    dns: strings(h, 'Dns', 'HostConfig.Dns'),
    dnsSearch: strings(h, 'DnsSearch', 'HostConfig.DnsSearch'),
    dnsOption: strings(h, 'DnsOptions', 'HostConfig.DnsOptions'),
    addHost: strings(h, 'ExtraHosts', 'HostConfig.ExtraHosts'),
    links: strings(h, 'Links', 'HostConfig.Links'),
  });
  return compact({ ...n, ...extra });
}

/** The API field each `berth create` flag comes from, so the engine's refusals name what the client sent. */
const API_FIELDS: Record<string, string> = {
  '--name': 'name', '--env': 'Env', '--workdir': 'WorkingDir', '--user': 'User', '--label': 'Labels', '--stop-signal': 'StopSignal',
  '--stop-timeout': 'StopTimeout', '--expose': 'ExposedPorts', '--hostname': 'Hostname', '--domainname': 'Domainname',
  '--health-cmd': 'Healthcheck.Test', '--health-retries': 'Healthcheck.Retries', '--health-interval': 'Healthcheck.Interval',
  '--health-timeout': 'Healthcheck.Timeout', '--health-start-period': 'Healthcheck.StartPeriod', '--entrypoint': 'Entrypoint',
  '--volume': 'HostConfig.Binds', '--mount': 'HostConfig.Mounts', '--tmpfs': 'HostConfig.Tmpfs', '--volumes-from': 'HostConfig.VolumesFrom',
  '--publish': 'HostConfig.PortBindings', publish: 'HostConfig.PortBindings', '--security-opt seccomp': 'HostConfig.SecurityOpt', '--network': 'HostConfig.NetworkMode', '--restart': 'HostConfig.RestartPolicy',
  '--memory': 'HostConfig.Memory', '--memory-swap': 'HostConfig.MemorySwap', '--memory-reservation': 'HostConfig.MemoryReservation',
  '--cpus': 'HostConfig.NanoCpus', '--cpu-shares': 'HostConfig.CpuShares', '--cpu-quota': 'HostConfig.CpuQuota', '--cpu-period': 'HostConfig.CpuPeriod',
  '--cpuset-cpus': 'HostConfig.CpusetCpus', '--cpuset-mems': 'HostConfig.CpusetMems', '--pids-limit': 'HostConfig.PidsLimit',
  '--cap-add': 'HostConfig.CapAdd', '--cap-drop': 'HostConfig.CapDrop', '--add-host': 'HostConfig.ExtraHosts', '--dns': 'HostConfig.Dns',
  '--dns-search': 'HostConfig.DnsSearch', '--dns-option': 'HostConfig.DnsOptions', '--init': 'HostConfig.Init', '--log-opt': 'HostConfig.LogConfig.Config',
  '--security-opt': 'HostConfig.SecurityOpt', '--sysctl': 'HostConfig.Sysctls', '--ulimit': 'HostConfig.Ulimits', '--device': 'HostConfig.Devices',
  '--shm-size': 'HostConfig.ShmSize', '--group-add': 'HostConfig.GroupAdd', '--ipc': 'HostConfig.IpcMode', '--pid': 'HostConfig.PidMode',
  '--uts': 'HostConfig.UTSMode', '--oom-score-adj': 'HostConfig.OomScoreAdj', '--cgroupns': 'HostConfig.CgroupnsMode', '--userns': 'HostConfig.UsernsMode',
  '--cgroup-parent': 'HostConfig.CgroupParent', '--runtime': 'HostConfig.Runtime', '--annotation': 'HostConfig.Annotations', '--link': 'HostConfig.Links',
  '--network-alias': 'NetworkingConfig.EndpointsConfig.Aliases', '--ip': 'NetworkingConfig.EndpointsConfig.IPAMConfig.IPv4Address',
  '--ip6': 'NetworkingConfig.EndpointsConfig.IPAMConfig.IPv6Address', '--mac-address': 'NetworkingConfig.EndpointsConfig.MacAddress',
};

/** An engine refusal of a create, worded with the API field the client sent instead of the CLI flag. */
export function apiCreateError(err: unknown): unknown {
  if (!(err instanceof InvalidArgumentError)) return err;
  const api = API_FIELDS[err.field];
  const prefix = `invalid ${err.field}: `;
  if (!api || !err.message.startsWith(prefix)) return err;
  return new ApiError(400, `invalid ${api}: ${err.message.slice(prefix.length)}${err.hint ? ` (${err.hint})` : ''}`);
}
