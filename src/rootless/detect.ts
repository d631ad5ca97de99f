import { readFileSync } from 'node:fs';
import { isIdentityMap, parseProcIdMap, toHostId, type IdMap } from '../userns/index.js';

/** What the process is: rootless (not the host's root), and the user namespace it runs in. */
export interface RootlessFacts {
  readonly rootless: boolean;
  /** inside the user namespace Berth makes (or another one): uid 0 is not the host's root */
  readonly inNamespace: boolean;
  /** the host uid/gid Berth acts for: the caller's, or what uid 0 of the namespace maps to */
  readonly hostUid: number;
  readonly hostGid: number;
  readonly uidMap: readonly IdMap[];
  readonly gidMap: readonly IdMap[];
}

/**
 * Rootless when the effective uid is not 0, or when uid 0 is not the host's (the process runs in a user
 * namespace: Berth's own, re-entered by a later command or by a container's exit hook, or a foreign one,
 * where trusted xattrs and cgroup limits are just as out of reach).
 */
export function factsOf(euid: number, egid: number, uidMapText: string, gidMapText: string): RootlessFacts {
  const uidMap = parseProcIdMap(uidMapText);
  const gidMap = parseProcIdMap(gidMapText);
  const inNamespace = uidMap.length > 0 && !isIdentityMap(uidMap);
  const outerOf = (map: readonly IdMap[], id: number) => toHostId(map, id) ?? id;
  return {
    rootless: euid !== 0 || inNamespace,
    inNamespace,
    hostUid: inNamespace ? outerOf(uidMap, euid) : euid,
    hostGid: inNamespace ? outerOf(gidMap, egid) : egid,
    uidMap,
    gidMap,
  };
}

let cached: RootlessFacts | undefined;

/** This process's facts, read once. */
export function rootlessFacts(): RootlessFacts {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  cached ??= factsOf(process.geteuid?.() ?? 0, process.getegid?.() ?? 0, read('/proc/self/uid_map'), read('/proc/self/gid_map'));
  return cached;
}

export function isRootless(): boolean {
  return rootlessFacts().rootless;
}

/** net.ipv4.ip_unprivileged_port_start of this netns (1024 when it cannot be read: the kernel's default). */
export function unprivilegedPortStart(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    return Number.isInteger(n) ? n : 1024;
  } catch {
    return 1024;
  }
}

/**
 * Whether the kernel mounts overlayfs inside a user namespace (Linux 5.11, with `userxattr`): rootless Berth's
 * storage. `release` is uname's (os.release()). Older kernels need fuse-overlayfs (storage/driver.ts probes the real thing).
 */
export function overlayInUsernsSupported(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 11);
}
