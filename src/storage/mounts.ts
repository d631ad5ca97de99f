import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { RuntimeError } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { processTag, tagAlive } from '../util/liveness.js';
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
const FUSE_MOUNT_MS = 30_000;

/** Where a fuse-overlayfs mount keeps its daemon's "pid starttime" tag and its messages. */
export interface FuseFiles {
  pid: string;
  log: string;
}

/**
 * Starts fuse-overlayfs in the foreground of a process of its own, detached (its own session; stdin on
 * /dev/null, its messages in `files.log`), as conmon is: the daemon serves the mount after the berth
 * command that started it has exited. Its pid is recorded before the mount is waited for, so that a
 * command killed in between leaves a daemon the next one finds. Relative lowerdirs are resolved from
 * `cwd`. (fuse-overlayfs could daemonize itself, but then only a scan of /proc finds its pid: 70-200 ms.)
 */
export async function mountFuseOverlay(target: string, dirs: OverlayDirs, rootless: boolean, files: FuseFiles): Promise<void> {
  const options = fuseOverlayOptions(dirs, rootless);
  const log = await fsp.open(files.log, 'w', 0o600);
  let exited: string | undefined;
  let started: Promise<number>;
  try {
    const child = spawn('fuse-overlayfs', ['-f', '-o', options, target], { cwd: dirs.cwd, detached: true, stdio: ['ignore', log.fd, log.fd] });
    child.once('exit', (code, signal) => { exited = signal ? `was killed by ${signal}` : `exited with ${code}`; });
    started = new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new RuntimeError(`cannot start fuse-overlayfs: ${err.message}`, 'install the fuse-overlayfs package (apt-get install fuse-overlayfs)', { cause: err })));
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
  } finally {
    await log.close();
  }
  const pid = await started;
  await writeFileAtomic(files.pid, processTag(pid));
  for (let waited = 0; !(await isMounted(target)); waited += 5) {
    if (exited !== undefined || waited >= FUSE_MOUNT_MS) {
      if (exited === undefined) process.kill(pid, 'SIGKILL');
      const said = (await fsp.readFile(files.log, 'utf8').catch(() => '')).trim().split('\n').filter((l) => !l.includes('unknown argument ignored')).slice(-3).join(' | ');
      throw new RuntimeError(`fuse-overlayfs ${exited ?? `did not mount ${target} in ${FUSE_MOUNT_MS / 1000} s`}: ${said || 'no output'}`,
        'check that /dev/fuse exists and that this user may open it (rootless: the kernel needs FUSE in user namespaces, Linux 4.18)', { command: 'fuse-overlayfs', stderr: said });
    }
    await sleep(5);
  }
}

/** Pids of the live fuse-overlayfs daemons serving `target` (their last argument), zombies left out. A scan of /proc: slow. */
export async function fuseDaemons(target: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await fsp.readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (!argv.length || !/(^|\/)fuse-overlayfs$/.test(argv[0]!) || argv[argv.length - 1] !== target) continue;
    if (tagAlive(processTag(Number(name)))) pids.push(Number(name));
  }
  return pids;
}

/**
 * Unmounts a fuse-overlayfs mount and waits for its daemon to go: the kernel ends the FUSE connection at
 * umount and the daemon exits on its own. One that does not (its mount lazily detached and still in use)
 * is killed after FUSE_DAEMON_EXIT_MS: the snapshot it serves is being unmounted, so nothing may use it
 * any more. Without a recorded pid (a command killed before writing it, a snapshot without a record)
 * /proc is searched.
 */
export async function unmountFuse(target: string, files: FuseFiles): Promise<void> {
  await unmount(target);
  const tag = (await fsp.readFile(files.pid, 'utf8').catch(() => '')).trim();
  const daemons = async () => (tag ? (tagAlive(tag) ? [Number(tag.split(' ')[0])] : []) : fuseDaemons(target));
  for (let waited = 0; ; waited += 10) {
    const pids = await daemons();
    if (!pids.length) break;
    if (waited >= FUSE_DAEMON_EXIT_MS) {
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* exited meanwhile */ }
      }
    }
    if (waited >= 2 * FUSE_DAEMON_EXIT_MS) throw new RuntimeError(`the fuse-overlayfs daemon of ${target} (pid ${pids.join(', ')}) does not exit`, 'kill it by hand');
    await sleep(10);
  }
  // The tag stays: it names a process that is gone, so the next unmount (remove after stop) returns at
  // once instead of searching /proc, and the next mount writes its own.
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
