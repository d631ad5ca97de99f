import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
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
 * fuse-overlayfs's options for `dirs`. `allow_other`: the container's processes are other uids than the
 * daemon's (a user-namespaced root, a non-root USER), and FUSE lets only the mounter in without it.
 * As root, `suid,dev` as the kernel's overlay has them (libfuse mounts nosuid,nodev by default); in a user
 * namespace the kernel makes every mount nodev anyway.
 */
export function fuseOverlayOptions(dirs: OverlayDirs, rootless: boolean): string {
  for (const dir of [...dirs.lower, dirs.upper ?? '', dirs.work ?? '']) {
    if (/[:,]/.test(dir)) throw new RuntimeError(`cannot mount fuse-overlayfs over ${dir}: the path holds ':' or ','`, 'use a store root whose path has neither');
  }
  const parts = [`lowerdir=${[...new Set(dirs.lower)].join(':')}`];
  if (dirs.upper) parts.push(`upperdir=${dirs.upper}`, `workdir=${dirs.work}`);
  parts.push('allow_other', ...(rootless ? [] : ['suid', 'dev']));
  return parts.join(',');
}

export const FUSE_DAEMON_EXIT_MS = 5_000;

/**
 * fuse-overlayfs mounts, then daemonizes (libfuse's fuse_daemonize: a fork in a session of its own, cwd /,
 * stdio on /dev/null) and this command returns once the mount is there: the daemon serves it after the
 * berth command that started it has exited, as conmon outlives it. Relative lowerdirs are resolved from
 * `cwd` before the daemon changes to /.
 */
export async function mountFuseOverlay(target: string, dirs: OverlayDirs, rootless: boolean): Promise<void> {
  await run('fuse-overlayfs', ['-o', fuseOverlayOptions(dirs, rootless), target], { cwd: dirs.cwd, timeout: 60_000 });
}

/** Pids of the live fuse-overlayfs daemons serving `target` (their last argument), zombies left out. */
export async function fuseDaemons(target: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await fsp.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (!argv.length || !/(^|\/)fuse-overlayfs$/.test(argv[0]!) || argv[argv.length - 1] !== target) continue;
    const stat = await fsp.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    if (stat && stat.replace(/^.*\) /s, '')[0] !== 'Z') pids.push(Number(name));
  }
  return pids;
}

/**
 * Unmounts a fuse-overlayfs mount and waits for its daemon to go: the kernel ends the FUSE connection at
 * umount and the daemon exits on its own. One that does not (its mount lazily detached and still in use, or
 * left by a command killed before the mount appeared) is killed after FUSE_DAEMON_EXIT_MS: the snapshot
 * it serves is being unmounted, so nothing may use it any more.
 */
export async function unmountFuse(target: string): Promise<void> {
  await unmount(target);
  for (let waited = 0; ; waited += 20) {
    const pids = await fuseDaemons(target);
    if (!pids.length) return;
    if (waited >= FUSE_DAEMON_EXIT_MS) {
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* exited meanwhile */ }
      }
    }
    if (waited >= 2 * FUSE_DAEMON_EXIT_MS) throw new RuntimeError(`the fuse-overlayfs daemon of ${target} (pid ${pids.join(', ')}) does not exit`, 'kill it by hand');
    await sleep(20);
  }
}

/**
 * Idempotent: "not mounted" is success. A mount still there after umount is busy (a process has its cwd
 * or a file open inside): it is detached lazily, as the kernel frees it once the last user leaves.
 * Loops because a target can hold stacked mounts.
 */
export async function unmount(target: string): Promise<void> {
  for (let round = 0; round < MAX_UNMOUNT_ROUNDS && (await isMounted(target)); round++) {
    try {
      await run('umount', [target]);
    } catch {
      if (await isMounted(target)) await run('umount', ['-l', target]);
    }
  }
  if (await isMounted(target)) throw new RuntimeError(`${target} is still mounted`, 'find what holds it with "findmnt" and unmount it by hand');
}
