import path from 'node:path';
import { CorruptError } from '../errors.js';

const HINT = 'the layer is malformed or hostile; pull or build the image from a trusted source';

/**
 * Turns a tar entry name into a path relative to the layer root ('' for the root itself).
 * OCI image-spec (layer.md): entries are relative to the root, so a leading '/' is dropped as Docker does;
 * a path that climbs out with '..' is refused, never clamped, so a hostile layer cannot pick a target.
 */
export function entryPath(name: string): string {
  if (name.includes('\0')) throw new CorruptError(`layer entry ${JSON.stringify(name)} has a NUL byte in its name`, HINT);
  const rel = path.posix.normalize(name.replace(/^\/+/, '') || '.').replace(/\/+$/, '');
  if (rel === '..' || rel.startsWith('../')) throw new CorruptError(`layer entry "${name}" points outside the layer`, HINT);
  return rel === '.' ? '' : rel;
}

/** A hard link's target, checked like an entry name; the root itself cannot be a link target. */
export function linkTarget(entry: string, linkname: string): string {
  const rel = entryPath(linkname);
  if (rel === '') throw new CorruptError(`layer entry "${entry}" is a hard link to the layer root`, HINT);
  return rel;
}

export type Whiteout =
  /** `.wh.NAME`: NAME is deleted from the layers below; overlayfs wants a 0:0 char device at NAME */
  | { kind: 'delete'; path: string }
  /** `.wh..wh..opq`: the directory hides everything below it; overlayfs wants trusted.overlay.opaque=y */
  | { kind: 'opaque'; dir: string }
  /** other `.wh..wh.*` names are AUFS bookkeeping (hard-link dirs) with no meaning in overlay form */
  | { kind: 'ignore' };

const PREFIX = '.wh.';
const META_PREFIX = '.wh..wh.';
const OPAQUE = '.wh..wh..opq';

/** OCI whiteouts (image-spec layer.md, "Whiteouts") for a normalized entry path, or undefined for a plain entry. */
export function parseWhiteout(rel: string): Whiteout | undefined {
  const base = path.posix.basename(rel);
  if (!base.startsWith(PREFIX)) return undefined;
  const dir = path.posix.dirname(rel);
  const parent = dir === '.' ? '' : dir;
  if (base === OPAQUE) return { kind: 'opaque', dir: parent };
  if (base.startsWith(META_PREFIX)) return { kind: 'ignore' };
  const name = base.slice(PREFIX.length);
  if (name === '' || name === '.' || name === '..') {
    throw new CorruptError(`layer entry "${rel}" is a whiteout with no valid name`, HINT);
  }
  return { kind: 'delete', path: parent ? `${parent}/${name}` : name };
}

/** Every proper ancestor of a relative path, outermost first: 'a/b/c' → ['a', 'a/b']. */
export function ancestors(rel: string): string[] {
  const parts = rel.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/** True when `rel` is `dir` or inside it. */
export function isWithin(rel: string, dir: string): boolean {
  return rel === dir || rel.startsWith(dir + '/');
}
