import { promises as fsp } from 'node:fs';
import { run } from '../util/exec.js';
import { failpoint } from '../util/failpoint.js';
import { walkInRoot } from '../util/inroot.js';

const COPY_TIMEOUT_MS = 30 * 60_000;

/**
 * The folder of the image's content at `dest`, resolved inside `rootfs` as the container would see it
 * (an absolute or `..` link never leaves the rootfs: such a path is not copied at all), when it is a
 * folder with something in it.
 */
export async function copySource(rootfs: string, dest: string): Promise<string | undefined> {
  const walked = await walkInRoot(rootfs, dest);
  if (!('path' in walked)) return undefined;
  const st = await fsp.lstat(walked.path).catch(() => undefined);
  if (!st?.isDirectory()) return undefined;
  return (await isEmptyDir(walked.path)) ? undefined : walked.path;
}

export async function isEmptyDir(dir: string): Promise<boolean> {
  const handle = await fsp.opendir(dir);
  try {
    return (await handle.read()) === null;
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Copies the folder `src` into `dst` (which exists and is empty) with owners, modes, times, xattrs,
 * hard links and symlinks as they are (`cp -a` never follows a link in the source), then gives `dst`
 * the owner and mode of `src`, as Docker's copy-up does for the volume's root.
 */
export async function copyTree(src: string, dst: string): Promise<void> {
  await run('cp', ['-a', '--no-dereference', '--', `${src}/.`, `${dst}/`], { timeout: COPY_TIMEOUT_MS });
  const st = await fsp.lstat(src);
  await fsp.chown(dst, st.uid, st.gid);
  await fsp.chmod(dst, st.mode & 0o7777);
  failpoint('volume.copyup.mid-copy');
}

/**
 * Fills an empty plain folder `target` in one step: the copy is made in `tmp` (beside it, in the same
 * volume folder) and renamed over the empty `target`, so a copy killed half-way leaves a temp folder
 * that the next command removes, and `target` empty, to be filled again.
 */
export async function copyAside(src: string, tmp: string, target: string): Promise<void> {
  await fsp.mkdir(tmp, { mode: 0o700 });
  try {
    await copyTree(src, tmp);
    await fsp.rename(tmp, target);
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

