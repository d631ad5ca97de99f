import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { Mount } from '../../runtime-spec/types.js';
import { parseBytes } from './units.js';

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
/** Where --init's binary appears in the container: Docker's path, so scripts that look for it still work. */
export const INIT_PATH = '/sbin/docker-init';

const NOSUID_NOEXEC_NODEV = ['nosuid', 'noexec', 'nodev'];

export interface SystemMountOptions {
  privileged: boolean;
  shmSize: number;
  /** --ipc host: the host's /dev/shm is bound in, and mqueue is the host's. */
  hostIpc: boolean;
  /**
   * Rootless with the host's netns: sysfs may only be mounted by the user namespace that owns the netns,
   * so the host's /sys is bound read-only instead (runc's specconv.ToRootless does the same).
   */
  bindSys?: boolean;
}

/** The kernel filesystems every container gets, as Docker mounts them (moby oci/defaults.go). */
export function systemMounts(opts: SystemMountOptions): Mount[] {
  // Privileged containers may write to /sys and the cgroup tree, as in Docker.
  const sysMode = opts.privileged ? 'rw' : 'ro';
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: NOSUID_NOEXEC_NODEV },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    opts.bindSys
      ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', ...NOSUID_NOEXEC_NODEV, 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: [...NOSUID_NOEXEC_NODEV, sysMode] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: [...NOSUID_NOEXEC_NODEV, sysMode] },
  ];
  if (opts.hostIpc) {
    mounts.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] });
  } else {
    mounts.push(
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: NOSUID_NOEXEC_NODEV },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: [...NOSUID_NOEXEC_NODEV, 'mode=1777', `size=${opts.shmSize}`] },
    );
  }
  return mounts.map((m) => ({ ...m, options: [...m.options!] }));
}

export function parseShmSize(value: string | number | undefined): number {
  if (value === undefined || value === '' || value === 0) return DEFAULT_SHM_SIZE;
  const size = parseBytes('--shm-size', value);
  if (size <= 0) throw new InvalidArgumentError('--shm-size', `${value}: the size must be greater than 0`);
  return size;
}

/** Bind mounts of the files the network layer writes (Docker binds them rbind, rprivate, writable). */
export function fileMounts(files: { hostname?: string; hosts?: string; resolvConf?: string }): Mount[] {
  const out: Mount[] = [];
  const bind = (destination: string, source: string | undefined) => {
    if (source) out.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
  };
  bind('/etc/resolv.conf', files.resolvConf);
  bind('/etc/hostname', files.hostname);
  bind('/etc/hosts', files.hosts);
  return out;
}

const TMPFS_FLAGS = new Set(['ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'relatime',
  'strictatime', 'diratime', 'nodiratime', 'sync', 'async', 'dirsync', 'mand', 'nomand']);
const TMPFS_VALUES = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** --tmpfs PATH[:OPTIONS]; Docker's defaults noexec,nosuid,nodev come first so that OPTIONS can undo them. */
export function parseTmpfs(text: string): Mount {
  const colon = text.indexOf(':');
  const destination = colon < 0 ? text : text.slice(0, colon);
  const options = colon < 0 ? [] : text.slice(colon + 1).split(',').filter(Boolean);
  if (!path.posix.isAbsolute(destination)) throw new InvalidArgumentError('--tmpfs', `"${destination}" is not an absolute path`);
  for (const o of options) {
    const [key = '', value] = o.split('=', 2);
    if (value === undefined ? !TMPFS_FLAGS.has(key) : !TMPFS_VALUES.has(key) || !value) {
      throw new InvalidArgumentError('--tmpfs', `unknown option "${o}" in "${text}"`, 'use size=, mode=, uid=, gid=, nr_inodes= or flags like exec, ro');
    }
  }
  return { destination: path.posix.resolve(destination), type: 'tmpfs', source: 'tmpfs', options: [...NOSUID_NOEXEC_NODEV, ...options] };
}

export function initMount(initPath: string): Mount {
  return { destination: INIT_PATH, type: 'bind', source: initPath, options: ['rbind', 'ro', 'rprivate'] };
}

/**
 * Joins the base mounts with the user's. A user mount replaces a base mount at the same destination (as
 * -v /dev/shm or --tmpfs /run does in Docker); two user mounts at one place are refused. User mounts are
 * sorted parents first (a stable sort by depth, Docker's sortMounts) so that a child is not hidden.
 */
export function mergeMounts(base: readonly Mount[], user: readonly Mount[]): Mount[] {
  const seen = new Set<string>();
  const normalized = user.map((m) => {
    if (!path.posix.isAbsolute(m.destination)) throw new InvalidArgumentError('mount', `"${m.destination}" is not an absolute path`);
    const destination = path.posix.resolve(m.destination);
    if (seen.has(destination)) throw new InvalidArgumentError('mount', `duplicate mount point: ${destination}`);
    seen.add(destination);
    return { ...m, destination };
  });
  const depth = (p: string) => (p === '/' ? 0 : p.split('/').length - 1);
  const sorted = normalized.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i);
  return [...base.filter((m) => !seen.has(m.destination)), ...sorted.map((x) => x.m)];
}
