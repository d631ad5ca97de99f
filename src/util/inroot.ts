import { promises as fsp } from 'node:fs';
import path from 'node:path';

export const MAX_SYMLINKS = 40;

/** An image symlink met on the way, by its path in the image and its target. */
export interface ImageLink {
  link: string;
  target: string;
}

export type Walked = { path: string } | { missing: true } | { escape: ImageLink } | { loop: ImageLink };

/**
 * Follows `relative` inside `root` as securejoin does: an absolute target starts again at root. A `..`
 * that a link's target climbs above root is reported as an escape (securejoin would clamp it; the kernel,
 * following the same link from the host, would leave the rootfs), with the link it came from.
 */
export async function walkInRoot(root: string, relative: string): Promise<Walked> {
  const pending: { part: string; via?: ImageLink }[] = relative.split('/').filter(Boolean).map((part) => ({ part }));
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const { part, via } = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      if (!done.length && via) return { escape: via };
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, part);
    let st;
    try {
      st = await fsp.lstat(host);
    } catch (err) {
      if (isMissing(err)) return { missing: true };
      throw err;
    }
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    const link = { link: '/' + [...done, part].join('/'), target: await fsp.readlink(host) };
    if (++links > MAX_SYMLINKS) return { loop: link };
    if (link.target.startsWith('/')) done.length = 0;
    pending.unshift(...link.target.split('/').filter(Boolean).map((p) => ({ part: p, via: link })));
  }
  return { path: path.join(root, ...done) };
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}
