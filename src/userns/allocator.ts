import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BadStateError, CorruptError } from '../errors.js';
import { ensureDir, pathExists, readJsonIfExists, writeJsonAtomic } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import type { IdMapping } from './idmap.js';
import { parseSubidFile, rangesOf, SUBGID_FILE, SUBUID_FILE, type SubidRange } from './subid.js';

/** The host-wide registry of auto ranges: one file for every Berth root on the host, so roots never overlap. */
export const DEFAULT_REGISTRY = '/var/lib/berth-userns/ranges.json';
/** The subuid/subgid owner whose ranges root Berth hands out (Docker's dockremap, podman's containers). */
export const SUBID_USER = 'berth';
/** What setup.sh writes: a billion ids, above the 100000 + 65536·n that useradd hands to people. */
export const SUGGESTED_LINE = `${SUBID_USER}:1000000000:1000000000`;

/** Who holds a range: a container of a root, alive while `marker` (its folder) exists. */
export interface RangeOwner {
  root: string;
  container: string;
  marker: string;
}

export interface RangeEntry extends RangeOwner {
  uid: { start: number; size: number };
  gid: { start: number; size: number };
}

interface Registry {
  version: 1;
  entries: RangeEntry[];
}

export interface AllocatorOptions {
  registry?: string;
  subuid?: string;
  subgid?: string;
  user?: string;
  /**
   * The ids to hand out, instead of the user's subuid/subgid lines: rootless Berth's come from its own
   * namespace (1..N; 0 is the user), where the lines' host ids mean nothing.
   */
  ranges?: { uid: SubidRange[]; gid: SubidRange[] };
}

export interface IdAllocator {
  /** A range of `size` ids no other live owner holds, or the one this owner already has (a repeat is safe). */
  allocate(owner: RangeOwner, size: number): Promise<IdMapping>;
  /** "Not held" is success. */
  release(owner: Pick<RangeOwner, 'root' | 'container'>): Promise<void>;
  list(): Promise<RangeEntry[]>;
}

/**
 * Auto ranges, allocated under one lock from the `berth` lines of /etc/subuid and /etc/subgid. The
 * registry is written atomically; an entry whose owner's folder is gone (its root deleted, its container
 * removed by a crashed command) is reclaimed by the next allocation.
 */
export function openAllocator(opts: AllocatorOptions = {}): IdAllocator {
  const registry = opts.registry ?? DEFAULT_REGISTRY;
  const files = { uid: opts.subuid ?? SUBUID_FILE, gid: opts.subgid ?? SUBGID_FILE };
  const user = opts.user ?? SUBID_USER;
  const locked = async <T>(fn: () => Promise<T>) => {
    await ensureDir(path.dirname(registry), 0o700);
    return withLock(`${registry}.lock`, fn);
  };
  const read = async (): Promise<Registry> => {
    const reg = await readJsonIfExists<Registry>(registry);
    if (reg && (reg.version !== 1 || !Array.isArray(reg.entries))) throw new CorruptError(`${registry} is not a Berth range registry`, `move it aside; live containers keep their ranges in their records`);
    return reg ?? { version: 1, entries: [] };
  };
  const same = (a: Pick<RangeOwner, 'root' | 'container'>, b: Pick<RangeOwner, 'root' | 'container'>) => a.root === b.root && a.container === b.container;

  return {
    allocate: (owner, size) => locked(async () => {
      const reg = await read();
      const held = reg.entries.find((e) => same(e, owner));
      if (held) return mappingOf(held);
      const live: RangeEntry[] = [];
      for (const e of reg.entries) if (await pathExists(e.marker)) live.push(e);
      const uid = findFree(opts.ranges?.uid ?? await subidRanges(files.uid, user), live.map((e) => e.uid), size, opts.ranges ? 'the user namespace' : files.uid);
      const gid = findFree(opts.ranges?.gid ?? await subidRanges(files.gid, user), live.map((e) => e.gid), size, opts.ranges ? 'the user namespace' : files.gid);
      const entry: RangeEntry = { root: owner.root, container: owner.container, marker: owner.marker, uid: { start: uid, size }, gid: { start: gid, size } };
      await writeJsonAtomic(registry, { version: 1, entries: [...live, entry] } satisfies Registry, 0o600);
      return mappingOf(entry);
    }),
    release: (owner) => locked(async () => {
      if (!(await pathExists(registry))) return;
      const reg = await read();
      const rest = reg.entries.filter((e) => !same(e, owner));
      if (rest.length !== reg.entries.length) await writeJsonAtomic(registry, { version: 1, entries: rest } satisfies Registry, 0o600);
    }),
    list: async () => (await read()).entries,
  };
}

function mappingOf(e: RangeEntry): IdMapping {
  return { uid: [{ containerID: 0, hostID: e.uid.start, size: e.uid.size }], gid: [{ containerID: 0, hostID: e.gid.start, size: e.gid.size }] };
}

async function subidRanges(file: string, user: string): Promise<SubidRange[]> {
  let text = '';
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const mine = rangesOf(parseSubidFile(text, file), { name: user });
  if (!mine.length) {
    throw new BadStateError(`${file} has no range for user "${user}", which --userns auto takes its ids from`,
      `add the line "${SUGGESTED_LINE}" to /etc/subuid and to /etc/subgid (scripts/setup.sh does), choosing ids no other line uses`);
  }
  return mine;
}

/**
 * First fit: the lowest start inside one of `ranges` where `size` ids overlap none of `used`. Pure, for
 * the unit tests.
 */
export function findFree(ranges: readonly SubidRange[], used: readonly { start: number; size: number }[], size: number, source = 'subid'): number {
  const taken = [...used].sort((a, b) => a.start - b.start);
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    let start = r.start;
    for (const u of taken) {
      if (u.start + u.size <= start) continue;
      if (u.start >= start + size) break;
      start = u.start + u.size;
    }
    if (start + size <= r.start + r.count) return start;
  }
  const total = ranges.reduce((n, r) => n + r.count, 0);
  throw new BadStateError(`no free range of ${size} ids is left in the ${total} ids ${source} gives "${ranges[0]?.owner}" (${used.length} held)`,
    'remove containers that use --userns auto, ask for a smaller size (--userns auto:size=N), or give the user a larger range');
}
