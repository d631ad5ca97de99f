/**
 * The bundle layer's only contact with the disk: reading the image's user database, reading device numbers,
 * and writing config.json. Everything else in this folder is pure.
 */
import { constants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { CorruptError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { capabilitiesOfMask } from './capabilities.js';
import { ensureDir, writeJsonAtomic } from '../util/fs.js';
import type { Spec } from '../../runtime-spec/types.js';
import type { DeviceInfo } from './types.js';
import type { UserDb } from './user.js';
import { validateSpec } from './validate.js';
import { MAX_SYMLINKS, walkInRoot } from '../util/inroot.js';

/** A passwd file bigger than this is not a passwd file; refuse to read it into memory. */
const MAX_DB_SIZE = 4 * 1024 * 1024;

/** Validates the spec, then writes DIR/config.json atomically. */
export async function writeBundle(dir: string, spec: Spec): Promise<void> {
  validateSpec(spec);
  await ensureDir(dir, 0o700);
  await writeJsonAtomic(path.join(dir, 'config.json'), spec, 0o600);
}

/**
 * /etc/passwd and /etc/group of a rootfs ('' when missing). The image controls those paths, so symlinks are
 * resolved as if the rootfs were `/` (an absolute link or `..` never leaves it), and only regular files are
 * read: a link to the host's /etc/shadow or a device node in the image must not be read.
 */
export async function readUserDb(rootfs: string): Promise<UserDb> {
  const [passwd, group] = await Promise.all([readInRoot(rootfs, 'etc/passwd'), readInRoot(rootfs, 'etc/group')]);
  return { passwd, group };
}

async function readInRoot(root: string, relative: string): Promise<string> {
  const resolved = await resolveInRoot(root, relative);
  if (!resolved) return '';
  let fh;
  try {
    fh = await fsp.open(resolved, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (isMissing(err)) return '';
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_DB_SIZE) return '';
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** Like securejoin: the host path of `relative` inside `root`, following links within root; undefined if missing. */
async function resolveInRoot(root: string, relative: string): Promise<string | undefined> {
  const walked = await walkInRoot(root, relative);
  return 'path' in walked ? walked.path : undefined;
}

/**
 * runc (1.1) writes below these by plain host path after mounting them (setupDevSymlinks, setupPtmx:
 * rootfs + "/dev/fd"), so the kernel follows an image's symlink there out onto the host.
 */
const KERNEL_DIRS = ['dev', 'proc', 'sys'];

/**
 * Refuses a mounted rootfs runc must not be given: /dev, /proc or /sys a symlink, or a mount destination
 * whose path goes through a symlink leading out of the rootfs. Run just before runc create, on the
 * mounted rootfs, since the container's own writes can change it between starts.
 */
export async function checkRootfs(rootfs: string, destinations: Iterable<string>): Promise<void> {
  for (const dir of KERNEL_DIRS) {
    const host = path.join(rootfs, dir);
    const st = await fsp.lstat(host).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    if (st?.isSymbolicLink()) {
      throw new CorruptError(`unsafe image: /${dir} is a symbolic link (to ${await fsp.readlink(host)}), which runc would write through onto the host`,
        `use an image whose /${dir} is a directory`);
    }
  }
  for (const dest of new Set(destinations)) {
    const walked = await walkInRoot(rootfs, dest);
    if ('escape' in walked) {
      throw new CorruptError(`unsafe image: mount destination ${dest} goes through ${walked.escape.link}, a symbolic link (to ${walked.escape.target}) that leads out of the root filesystem`,
        'mount somewhere else, or use an image without that link');
    }
    if ('loop' in walked) {
      throw new CorruptError(`unsafe image: mount destination ${dest} goes through more than ${MAX_SYMLINKS} symbolic links (at ${walked.loop.link})`,
        'mount somewhere else, or use an image without that link loop');
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/** Device numbers and owners of host device nodes, for --device and --device-*-bps. */
export async function statDevices(paths: Iterable<string>): Promise<Record<string, DeviceInfo>> {
  const out: Record<string, DeviceInfo> = {};
  for (const p of new Set(paths)) {
    let st;
    try {
      st = await fsp.stat(p, { bigint: true });
    } catch (err) {
      if (isMissing(err)) throw new NotFoundError('device', p, 'check the device path on the host');
      throw err;
    }
    const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
    if (!type) throw new InvalidArgumentError('--device', `${p} is not a device node`);
    // glibc's gnu_dev_major/minor: dev_t keeps the low 8 bits of the minor apart from the rest.
    const rdev = st.rdev;
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    out[p] = { type, major, minor, uid: Number(st.uid), gid: Number(st.gid), fileMode: Number(st.mode & 0o777n) };
  }
  return out;
}

/** The bounding set of this process: what runc, started by it, can give a container. */
export async function readHostCapabilities(statusFile = '/proc/self/status'): Promise<string[]> {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(await fsp.readFile(statusFile, 'utf8'));
  if (!m) throw new CorruptError(`${statusFile} has no CapBnd line`, 'is /proc mounted?');
  return capabilitiesOfMask(m[1]!);
}

/** Folders of /dev that hold no device a container should get (runc's GetDevices skips the same). */
const SKIPPED_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** Every device node under /dev (for --privileged), skipping /dev/console, which runc sets up itself. */
export async function listHostDevices(dir = '/dev'): Promise<Record<string, DeviceInfo>> {
  const paths: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory() && !SKIPPED_DEV_DIRS.has(entry.name)) await walk(p);
      else if ((entry.isCharacterDevice() || entry.isBlockDevice()) && p !== '/dev/console') paths.push(p);
    }
  };
  await walk(dir);
  return statDevices(paths);
}

/** The host paths a request's --device and --device-*-bps flags name, for statDevices. */
export function devicePathsOf(req: { devices?: string[]; resources?: { deviceReadBps?: string[]; deviceWriteBps?: string[] } }): string[] {
  const fromDevices = (req.devices ?? []).map((d) => d.split(':')[0]!);
  const fromThrottles = [...(req.resources?.deviceReadBps ?? []), ...(req.resources?.deviceWriteBps ?? [])].map((t) => t.slice(0, t.lastIndexOf(':')));
  return [...new Set([...fromDevices, ...fromThrottles])].filter(Boolean);
}
