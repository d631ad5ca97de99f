import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RuntimeError } from '../errors.js';
import { run } from '../util/exec.js';
import { overlayXattrs } from './overlay-xattr.js';

/** The kernel takes mount options in one page; mount(8) refuses nothing longer, the kernel cuts it. */
const MAX_OPTIONS = 4095;
const MAX_UNMOUNT_ROUNDS = 8;

/** Mount points listed in a mountinfo text (proc(5): field 5, with \ooo escapes for space, tab, newline, backslash). */
export function parseMountPoints(mountinfo: string): string[] {
  return mountinfo.split('\n').filter(Boolean).map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))));
}

export async function isMounted(target: string): Promise<boolean> {
  return parseMountPoints(await fsp.readFile('/proc/self/mountinfo', 'utf8')).includes(target);
}

/**
 * `isMounted` for a file system with a superblock of its own (overlay, fuse-overlayfs, tmpfs), never a
 * bind mount (which keeps its source's device): whether the folder's device differs from its parent's.
 * Two stats, where the kernel writes mountinfo out whole on each read, a line per mount on the host:
 * 3-5 ms a read with 200 containers' overlays (issue 20), and a mount or unmount read it three times.
 */
export async function hasOwnMount(target: string): Promise<boolean> {
  try {
    const [mounted, parent] = await Promise.all([fsp.stat(target), fsp.stat(path.dirname(target))]);
    return mounted.dev !== parent.dev;
  } catch (err) {
    // A FUSE mount whose daemon died answers ENOTCONN: still a mount, to be unmounted.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export interface OverlayDirs {
  /** top layer first, as overlayfs wants them; relative to `cwd` */
  lower: string[];
  upper?: string;
  work?: string;
  /** folder the relative lowerdirs are resolved from, so deep images fit in one page */
  cwd: string;
}

/** overlayfs options for `dirs`; pure, so the page limit and the ordering are testable without root. */
export function overlayOptions(dirs: OverlayDirs): string {
  for (const dir of [...dirs.lower, dirs.upper ?? '', dirs.work ?? '']) {
    // overlayfs splits lowerdir on ':' and mount options on ','
    if (/[:,]/.test(dir)) throw new RuntimeError(`cannot mount an overlay over ${dir}: the path holds ':' or ','`, 'use a store root whose path has neither');
  }
  // Layers are stored by diffID, so two steps that changed nothing (or the same) name one folder twice, which
  // overlayfs refuses (ELOOP). Keeping only the topmost occurrence is the same filesystem: applying a layer
  // again above others sets exactly its own paths again, whatever the lower copy did to them.
  const parts = [`lowerdir=${[...new Set(dirs.lower)].join(':')}`];
  if (dirs.upper) parts.push(`upperdir=${dirs.upper}`, `workdir=${dirs.work}`);
  parts.push(...overlayXattrs().mountOptions);
  const options = parts.join(',');
  if (options.length > MAX_OPTIONS) {
    throw new RuntimeError(`cannot mount an overlay of ${dirs.lower.length} layers: its options exceed one page`, 'flatten the image (export and import it) to have fewer layers');
  }
  return options;
}

export async function mountOverlay(target: string, dirs: OverlayDirs): Promise<void> {
  await run('mount', ['-t', 'overlay', 'overlay', '-o', overlayOptions(dirs), target], { cwd: dirs.cwd });
}

/**
 * Idempotent: "not mounted" is success. A mount still there after umount is busy (a process has its cwd
 * or a file open inside): it is detached lazily, as the kernel frees it once the last user leaves.
 * Loops because a target can hold stacked mounts.
 */
export async function unmount(target: string, mounted: (target: string) => Promise<boolean> = isMounted): Promise<void> {
  for (let round = 0; round < MAX_UNMOUNT_ROUNDS && (await mounted(target)); round++) {
    try {
      await run('umount', [target]);
    } catch {
      if (await mounted(target)) await run('umount', ['-l', target]);
    }
  }
  if (await mounted(target)) throw new RuntimeError(`${target} is still mounted`, 'find what holds it with "findmnt" and unmount it by hand');
}
