import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/** One line of a uid or gid map (OCI's LinuxIDMapping, /proc/PID/uid_map): `size` ids from `containerID` onto `hostID`. */
export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

/** The uid and gid maps of one user namespace. */
export interface IdMapping {
  uid: IdMap[];
  gid: IdMap[];
}

/** The kernel's ids are 32-bit and (uid_t)-1 is never valid. */
const MAX_ID = 0xffffffff;
/** The kernel takes at most 340 lines in a uid_map (since 4.15). */
const MAX_LINES = 340;

/** `CONTAINER:HOST:SIZE`, podman's and Docker-compatible syntax of --uidmap/--gidmap. */
export function parseIdMap(field: string, text: string): IdMap {
  const parts = text.split(':');
  if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new InvalidArgumentError(field, `"${text}" is not CONTAINER:HOST:SIZE`, `write e.g. ${field} 0:100000:65536 (three whole numbers)`);
  }
  const [containerID, hostID, size] = parts.map(Number) as [number, number, number];
  if (size < 1) throw new InvalidArgumentError(field, `"${text}" maps no ids: the size must be at least 1`, `write e.g. ${field} 0:100000:65536`);
  if (containerID + size > MAX_ID || hostID + size > MAX_ID) {
    throw new InvalidArgumentError(field, `"${text}" goes past the largest id (${MAX_ID - 1})`, 'give smaller ids or a smaller size');
  }
  return { containerID, hostID, size };
}

/**
 * The kernel's rules for one map (user_namespaces(7)): neither the container ranges nor the host ranges
 * may overlap, or writing uid_map fails with EINVAL deep inside runc.
 */
export function checkIdMaps(field: string, maps: readonly IdMap[]): IdMap[] {
  if (!maps.length) throw new InvalidArgumentError(field, 'no ranges given', `write e.g. ${field} 0:100000:65536`);
  if (maps.length > MAX_LINES) throw new InvalidArgumentError(field, `${maps.length} ranges are more than the kernel's ${MAX_LINES}`, 'merge adjacent ranges');
  for (const side of ['containerID', 'hostID'] as const) {
    const sorted = [...maps].sort((a, b) => a[side] - b[side]);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      if (prev[side] + prev.size > cur[side]) {
        throw new InvalidArgumentError(field, `ranges ${formatIdMap(prev)} and ${formatIdMap(cur)} overlap on the ${side === 'hostID' ? 'host' : 'container'} side`,
          'give ranges that do not overlap');
      }
    }
  }
  return maps.map((m) => ({ ...m }));
}

/** The lines of /proc/PID/uid_map or gid_map (`CONTAINER HOST SIZE`, whitespace-aligned); others skipped. */
export function parseProcIdMap(text: string): IdMap[] {
  return text.split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter((p) => p.length === 3 && p.every(Number.isInteger))
    .map(([containerID, hostID, size]) => ({ containerID: containerID!, hostID: hostID!, size: size! }));
}

/** The initial user namespace's map: every id to itself. */
export function isIdentityMap(maps: readonly IdMap[]): boolean {
  return maps.length === 1 && maps[0]!.containerID === 0 && maps[0]!.hostID === 0 && maps[0]!.size === MAX_ID;
}

export function formatIdMap(m: IdMap): string {
  return `${m.containerID}:${m.hostID}:${m.size}`;
}

/** The host id a container id stands for, or undefined when the map leaves it out (seen as nobody). */
export function toHostId(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  return undefined;
}

/** The container id a host id is seen as, or undefined (the kernel's overflow id, 65534). */
export function toContainerId(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.hostID && id < m.hostID + m.size) return m.containerID + (id - m.hostID);
  return undefined;
}

/**
 * Podman's --userns keep-id, nested in a namespace of `size` ids where 0 is the user (rootless Berth's):
 * the user's own id `own` is the same number inside, container ids below it come from 1 up, and those
 * above it are themselves. Every id of the outer namespace is used once.
 */
export function keepIdMaps(own: number, size: number): IdMap[] {
  const below = Math.min(own, size - 1);
  const maps: IdMap[] = [{ containerID: own, hostID: 0, size: 1 }];
  if (below > 0) maps.unshift({ containerID: 0, hostID: 1, size: below });
  if (size - 1 > own) maps.push({ containerID: own + 1, hostID: own + 1, size: size - 1 - own });
  return maps;
}

/** A short, stable name for a mapping: containers with equal maps share what is made per mapping. */
export function mappingKey(mapping: IdMapping): string {
  const text = `${mapping.uid.map(formatIdMap).join(',')}/${mapping.gid.map(formatIdMap).join(',')}`;
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * What a user namespace nested in rootless Berth's own (--userns keep-id|auto, --uidmap) is made from: the
 * user it stands for, and how many ids Berth's namespace maps (0 is the user, 1.. its subordinate ids).
 */
export interface NestedUsernsFacts {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
  /** the user's home on the host, as Podman's keep-id writes it into the container's /etc/passwd */
  readonly home: string;
  readonly uids: number;
  readonly gids: number;
}
