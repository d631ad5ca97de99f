import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { MountPoint } from './types.js';

/** Docker's rule for volume names (daemon/names): at least two characters, no '/', ':' or leading '.'. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const PROPAGATION = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];
/** Docker Desktop's consistency words: accepted and meaningless on Linux, as Docker takes them. */
const CONSISTENCY = ['consistent', 'cached', 'delegated'];

export function checkVolumeName(name: string, field = 'volume name'): void {
  if (!VOLUME_NAME.test(name)) {
    throw new InvalidArgumentError(field, `"${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed (two characters at least)`,
      'if you meant a host folder, give its absolute path');
  }
}

/**
 * A container path: absolute, never `/` (the rootfs itself) nor under /proc (runc refuses it, and it
 * would hide the kernel's view), normalized so that `/data/` and `/data` are one mount point.
 */
function destinationOf(text: string, field: string, spec: string): string {
  if (!text) throw new InvalidArgumentError(field, `"${spec}" names no container path`, 'give an absolute path in the container');
  if (!path.posix.isAbsolute(text)) throw new InvalidArgumentError(field, `"${text}" in "${spec}" is not an absolute container path`, 'give an absolute path in the container, e.g. /data');
  const dest = path.posix.resolve(text);
  if (dest === '/') throw new InvalidArgumentError(field, `"${spec}": a mount over the container's root "/" is not allowed`, 'mount at a folder below /');
  if (dest === '/proc' || dest.startsWith('/proc/')) throw new InvalidArgumentError(field, `"${spec}": ${dest} is the kernel's /proc, which cannot be mounted over`, 'mount somewhere else');
  return dest;
}

/**
 * -v/--volume: `/ctr` (anonymous volume), `NAME:/ctr[:OPTS]` (named volume, made on first use),
 * `/host:/ctr[:OPTS]` (bind; a missing host folder is made at start, as Docker makes it). OPTS: ro|rw,
 * z|Z (SELinux relabelling: accepted and nothing done on a host without SELinux, as Docker does),
 * nocopy (volumes), a propagation mode (binds), consistent|cached|delegated (ignored, as on Linux Docker).
 */
export function parseVolumeFlag(spec: string): MountPoint {
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) {
    throw new InvalidArgumentError('--volume', `"${spec}" is not [SOURCE:]DESTINATION[:OPTIONS]`, 'e.g. -v /host/dir:/data:ro, -v myvol:/data or -v /data');
  }
  if (parts.length === 1) {
    return { type: 'volume', source: '', destination: destinationOf(parts[0]!, '--volume', spec), driver: 'local', mode: '', rw: true, propagation: '', anonymous: true, copyUp: true };
  }
  const [src = '', dst = '', opts] = parts;
  const destination = destinationOf(dst, '--volume', spec);
  const flags = opts ? opts.split(',') : [];
  const bind = path.posix.isAbsolute(src);
  if (flags.includes('idmap')) {
    throw new InvalidArgumentError('--volume', `"${spec}": idmap needs idmapped mounts, which this host's runc (1.1) cannot make`,
      'leave out :idmap; :U gives the source to the container\'s user instead (podman\'s meaning)');
  }
  // U: podman's "chown the source to the container's user" (done at each start, container/userns.ts).
  const allowed = ['ro', 'rw', 'z', 'Z', 'U', ...CONSISTENCY, ...(bind ? PROPAGATION : ['nocopy'])];
  const bad = flags.find((f) => !allowed.includes(f));
  if (bad !== undefined) {
    throw new InvalidArgumentError('--volume', `invalid mode "${bad}" in "${spec}"`,
      bind ? 'a bind takes ro|rw, z|Z and one of private, rprivate, shared, rshared, slave, rslave' : 'a volume takes ro|rw, z|Z and nocopy');
  }
  if (flags.includes('ro') && flags.includes('rw')) throw new InvalidArgumentError('--volume', `"${spec}" is both ro and rw`);
  const propagation = flags.filter((f) => PROPAGATION.includes(f));
  if (propagation.length > 1) throw new InvalidArgumentError('--volume', `"${spec}" names more than one propagation mode`);
  const rw = !flags.includes('ro');
  const chown = flags.includes('U') ? { chown: true } : {};
  if (bind) {
    return { type: 'bind', source: path.posix.resolve(src), destination, mode: opts ?? '', rw, propagation: propagation[0] ?? 'rprivate', createSource: true, ...chown };
  }
  checkVolumeName(src, '--volume');
  // Docker shows a named volume from -v with Mode "z" when no option was given.
  return { type: 'volume', source: '', name: src, destination, driver: 'local', mode: opts ?? 'z', rw, propagation: '', copyUp: !flags.includes('nocopy'), ...chown };
}

function parseBool(key: string, value: string | undefined, spec: string): boolean {
  if (value === undefined || value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidArgumentError('--mount', `invalid value "${value}" for ${key} in "${spec}"`, `write ${key}, ${key}=true or ${key}=false`);
}

/** Splits --mount's comma list; a value may be quoted ("a,b") as Docker's CSV reader allows. */
function splitCsv(spec: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of spec) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) { out.push(cur); cur = ''; }
    else cur += ch;
  }
  if (quoted) throw new InvalidArgumentError('--mount', `unbalanced quote in "${spec}"`);
  out.push(cur);
  return out;
}

/**
 * --mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,bind-propagation=...]
 * [,volume-nocopy][,volume-driver=...][,volume-opt=K=V][,volume-label=K=V][,tmpfs-size=...][,tmpfs-mode=...].
 * Unlike -v, a missing bind source is an error (Docker's rule), and options of another type are refused.
 */
export function parseMountFlag(spec: string): MountPoint {
  let type = 'volume';
  let source = '';
  let target = '';
  let readonly = false;
  let propagation: string | undefined;
  let nonRecursive = false;
  let nocopy = false;
  let driver: string | undefined;
  const volumeOpts: Record<string, string> = {};
  const volumeLabels: Record<string, string> = {};
  let tmpfsSize: string | undefined;
  let tmpfsMode: string | undefined;
  const kinds = new Set<string>();
  for (const field of splitCsv(spec)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const need = () => {
      if (!value) throw new InvalidArgumentError('--mount', `${key} needs a value in "${spec}"`, `write ${key}=VALUE`);
      return value;
    };
    if (key.startsWith('bind-') || key.startsWith('volume-') || key.startsWith('tmpfs-')) kinds.add(key.split('-')[0]!);
    switch (key) {
      case 'type': type = need(); break;
      case 'source': case 'src': source = need(); break;
      case 'target': case 'destination': case 'dst': target = need(); break;
      case 'readonly': case 'ro': readonly = parseBool(key, value, spec); break;
      case 'consistency': if (!CONSISTENCY.includes(need()) && value !== 'default') throw new InvalidArgumentError('--mount', `unknown consistency "${value}"`); break;
      case 'bind-propagation':
        if (!PROPAGATION.includes(need())) throw new InvalidArgumentError('--mount', `invalid bind-propagation "${value}"`, `use one of ${PROPAGATION.join(', ')}`);
        propagation = value;
        break;
      case 'bind-nonrecursive': nonRecursive = parseBool(key, value, spec); break;
      case 'volume-nocopy': nocopy = parseBool(key, value, spec); break;
      case 'volume-driver': driver = need(); break;
      case 'volume-opt': case 'volume-label': {
        const kv = need();
        const i = kv.indexOf('=');
        if (i <= 0) throw new InvalidArgumentError('--mount', `${key} "${kv}" is not KEY=VALUE`);
        (key === 'volume-opt' ? volumeOpts : volumeLabels)[kv.slice(0, i)] = kv.slice(i + 1);
        break;
      }
      case 'tmpfs-size':
        if (!/^\d+[kmg]?$/i.test(need())) throw new InvalidArgumentError('--mount', `invalid tmpfs-size "${value}"`, 'give bytes, or a number with k, m or g');
        tmpfsSize = value!.toLowerCase();
        break;
      case 'tmpfs-mode':
        if (!/^0?[0-7]{3,4}$/.test(need())) throw new InvalidArgumentError('--mount', `invalid tmpfs-mode "${value}"`, 'give an octal mode such as 1777');
        tmpfsMode = value;
        break;
      default:
        throw new InvalidArgumentError('--mount', `unexpected key "${key}" in "${spec}"`, 'keys: type, source, target, readonly, bind-propagation, volume-nocopy, volume-driver, volume-opt, volume-label, tmpfs-size, tmpfs-mode');
    }
  }
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') {
    throw new InvalidArgumentError('--mount', `unknown mount type "${type}"`, 'Berth mounts type=bind, type=volume and type=tmpfs');
  }
  for (const kind of kinds) {
    if (kind !== type) throw new InvalidArgumentError('--mount', `cannot mix "${kind}-*" options with mount type "${type}"`);
  }
  if (!target) throw new InvalidArgumentError('--mount', `"${spec}" has no target`, 'add target=/path/in/container');
  const destination = destinationOf(target, '--mount', spec);
  if (type === 'tmpfs') {
    if (source) throw new InvalidArgumentError('--mount', `source is not supported for tmpfs mounts ("${spec}")`);
    const tmpfsOptions = [...(tmpfsSize ? [`size=${tmpfsSize}`] : []), ...(tmpfsMode ? [`mode=${tmpfsMode}`] : []), ...(readonly ? ['ro'] : [])];
    return { type: 'tmpfs', source: '', destination, mode: '', rw: !readonly, propagation: '', tmpfsOptions };
  }
  if (type === 'bind') {
    if (!source) throw new InvalidArgumentError('--mount', `"${spec}": a bind mount needs a source`, 'add source=/absolute/host/path');
    if (!path.posix.isAbsolute(source)) throw new InvalidArgumentError('--mount', `bind source "${source}" is not an absolute host path`, 'give the host folder\'s absolute path');
    return {
      type: 'bind', source: path.posix.resolve(source), destination, mode: '', rw: !readonly, propagation: propagation ?? 'rprivate',
      ...(nonRecursive ? { nonRecursive: true } : {}),
    };
  }
  if (source) checkVolumeName(source, '--mount');
  const create = {
    ...(driver ? { driver } : {}), ...(Object.keys(volumeOpts).length ? { options: volumeOpts } : {}), ...(Object.keys(volumeLabels).length ? { labels: volumeLabels } : {}),
  };
  return {
    type: 'volume', source: '', ...(source ? { name: source } : { anonymous: true }), destination, driver: driver ?? 'local', mode: '', rw: !readonly, propagation: '',
    copyUp: !nocopy, ...(Object.keys(create).length ? { create } : {}),
  };
}

/** --volumes-from CONTAINER[:ro|rw]: the container's reference and the mode that overrides its mounts'. */
export function parseVolumesFrom(spec: string): { container: string; rw?: boolean } {
  const [container = '', mode, ...rest] = spec.split(':');
  if (!container || rest.length || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new InvalidArgumentError('--volumes-from', `"${spec}" is not CONTAINER[:ro|rw]`);
  }
  return { container, ...(mode ? { rw: mode === 'rw' } : {}) };
}

export interface MountRequest {
  volumes?: readonly string[];
  mounts?: readonly string[];
  /** --tmpfs destinations: they take the place of an image VOLUME at the same path */
  tmpfs?: readonly string[];
  /** each --volumes-from container's mounts, already resolved, with the mode given */
  volumesFrom?: readonly { mounts: readonly MountPoint[]; rw?: boolean }[];
  /** the image's VOLUME paths */
  imageVolumes?: readonly string[];
}

/**
 * Every mount of a container, as Docker merges them: --volumes-from first, then -v and --mount (which
 * replace one from another container at the same place; two at one place are refused), then an
 * anonymous volume for each image VOLUME no other mount (nor a --tmpfs) covers.
 */
export function planMounts(req: MountRequest): MountPoint[] {
  const byDest = new Map<string, MountPoint>();
  for (const from of req.volumesFrom ?? []) {
    for (const m of from.mounts) {
      if (m.type === 'tmpfs') continue;
      // Another container's volume is shared, never copied into again; its mode may be overridden.
      const { copyUp: _c, create: _r, createSource: _s, ...shared } = m;
      byDest.set(m.destination, { ...shared, ...(from.rw !== undefined ? { rw: from.rw, mode: from.rw ? 'rw' : 'ro' } : {}) });
    }
  }
  const own = new Set<string>();
  const user = [...(req.volumes ?? []).map(parseVolumeFlag), ...(req.mounts ?? []).map(parseMountFlag)];
  for (const m of user) {
    if (own.has(m.destination)) throw new InvalidArgumentError('--volume', `duplicate mount point: ${m.destination}`, 'mount one thing at each container path');
    own.add(m.destination);
    byDest.set(m.destination, m);
  }
  const tmpfs = new Set((req.tmpfs ?? []).map((t) => path.posix.resolve(t.split(':')[0] ?? '')));
  for (const m of byDest.values()) {
    if (tmpfs.has(m.destination)) throw new InvalidArgumentError('--tmpfs', `duplicate mount point: ${m.destination}`, 'mount one thing at each container path');
  }
  for (const v of req.imageVolumes ?? []) {
    const dest = path.posix.resolve('/', v);
    if (byDest.has(dest) || tmpfs.has(dest) || dest === '/') continue;
    byDest.set(dest, { type: 'volume', source: '', destination: dest, driver: 'local', mode: '', rw: true, propagation: '', anonymous: true, copyUp: true });
  }
  return [...byDest.values()];
}
