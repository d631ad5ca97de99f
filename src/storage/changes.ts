import { promises as fsp, type Stats } from 'node:fs';
import { toContainerId, type IdMapping } from '../userns/index.js';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { run } from '../util/exec.js';
import { packFile } from '../util/tar.js';
import { ancestors, isWithin } from './tarpath.js';
import { readXattrs, unquote } from './xattrs.js';
import { overlayXattrs } from './overlay-xattr.js';
import type { StorageDriverName } from './driver.js';

export type ChangeKind = 'A' | 'C' | 'D';

/** One line of `docker diff`: a path (absolute in the container) added, changed or deleted. */
export interface Change {
  kind: ChangeKind;
  path: string;
}


/** overlayfs' whiteout: a 0:0 character device in the upper dir (Documentation/filesystems/overlayfs.rst). */
function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

const WH = '.wh.';
const OPQ = '.wh..wh..opq';

/**
 * How an upper dir marks what it hides. The kernel's overlayfs: 0:0 character devices and one opaque xattr
 * (overlay-xattr.ts). fuse-overlayfs (1.10, read from what it writes): a 0:0 device when it may mknod one,
 * else an empty `.wh.NAME` file; an opaque folder gets `trusted.overlay.opaque` (as root) or
 * `user.fuseoverlayfs.opaque` (in a user namespace) and a `.wh..wh..opq` file as well (or alone, where
 * xattrs are refused). It hides every `.wh.` name from the container, so such a name in its upper is always
 * its own bookkeeping (it also leaves 0:0 devices named `.wh.*`), never a file of the container's.
 */
interface UpperFormat {
  readonly fuse: boolean;
  /** xattrs that mark a folder opaque */
  readonly opaque: readonly string[];
  /** xattr prefixes that are the driver's own: never reported, never packed into a layer */
  readonly own: readonly string[];
}

export function upperFormat(driver: StorageDriverName = 'overlay'): UpperFormat {
  const x = overlayXattrs();
  if (driver === 'overlay') return { fuse: false, opaque: [x.opaque], own: [x.prefix] };
  return { fuse: true, opaque: ['trusted.overlay.opaque', 'user.fuseoverlayfs.opaque', 'user.overlay.opaque'], own: ['trusted.overlay.', 'user.overlay.', 'user.fuseoverlayfs.'] };
}

/**
 * What an upper entry of the driver's own stands for: a whiteout of `name`, the opaque marker of its folder,
 * or bookkeeping to skip; undefined for the container's own files.
 */
function fuseMarker(fmt: UpperFormat, rel: string, st: Stats): { kind: 'whiteout'; rel: string } | { kind: 'opaque' | 'skip' } | undefined {
  const base = path.posix.basename(rel);
  if (!fmt.fuse || !base.startsWith(WH)) return undefined;
  if (base === OPQ) return { kind: 'opaque' };
  if (!st.isFile() || base.length === WH.length) return { kind: 'skip' };
  const dir = path.posix.dirname(rel);
  return { kind: 'whiteout', rel: (dir === '.' ? '' : dir + '/') + base.slice(WH.length) };
}

/** Relative paths (no leading '/') under which nothing counts as a change: mount points and what is below. */
function excluder(exclude: readonly string[]): (rel: string) => boolean {
  const rels = exclude.map((p) => path.posix.normalize(p).replace(/^\/+|\/+$/g, '')).filter(Boolean);
  return (rel) => rels.some((x) => isWithin(rel, x));
}

function untouchedCopy(st: Stats, lower: Stats): boolean {
  return st.isFile() && lower.isFile() && st.size === lower.size && st.mtimeMs === lower.mtimeMs && st.mode === lower.mode && st.uid === lower.uid && st.gid === lower.gid;
}

/** The order of `walk`: component by component. */
function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

/** Every path under `upper`, parents before children, names sorted (so that the output is stable). */
async function* walk(upper: string, rel = ''): AsyncGenerator<{ rel: string; st: Stats }> {
  const names = (await fsp.readdir(path.join(upper, rel))).sort();
  for (const name of names) {
    const child = rel ? `${rel}/${name}` : name;
    const st = await fsp.lstat(path.join(upper, child));
    yield { rel: child, st };
    if (st.isDirectory()) yield* walk(upper, child);
  }
}

/** Directories of `upper` marked opaque by an xattr (they hide everything below them), read in one getfattr call. */
async function opaqueDirs(upper: string, names: readonly string[] = [overlayXattrs().opaque]): Promise<Set<string>> {
  const pattern = `^(${names.map((n) => n.replace(/\./g, '\\.')).join('|')})$`;
  const { stdout } = await run('getfattr', ['-R', '-P', '-h', '--absolute-names', '-d', '-m', pattern, upper], { timeout: 300_000 });
  const out = new Set<string>();
  let file: string | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = unquote(line.slice(8));
    else if (file) {
      const eq = line.indexOf('=');
      if (eq > 0 && names.includes(line.slice(0, eq)) && line.slice(eq + 1).replace(/"/g, '') === 'y') out.add(path.relative(upper, file));
    }
  }
  return out;
}

/**
 * Whether `rel` is visible in the stack of lower dirs (top first): the first layer that has it, or
 * deletes it (a whiteout at it, an opaque dir or whiteout above it), decides.
 */
async function inLowers(lowers: readonly string[], rel: string, opaque: (layer: string, dir: string) => Promise<boolean>): Promise<Stats | undefined> {
  for (const layer of lowers) {
    const st = await fsp.lstat(path.join(layer, rel)).catch(() => undefined);
    if (st) return isWhiteout(st) ? undefined : st;
    for (const dir of ancestors(rel).reverse()) {
      const up = await fsp.lstat(path.join(layer, dir)).catch(() => undefined);
      if (up && (isWhiteout(up) || !up.isDirectory())) return undefined;
      if (up && (await opaque(layer, dir))) return undefined;
    }
  }
  return undefined;
}

/**
 * `docker diff` of an overlay snapshot: what its upper dir holds against the layers below (`lowers`, top
 * first). Whiteouts are D; a path the lowers have is C, else A. As Docker (whose mount points live in an
 * init layer below the container's), `exclude`d paths and a directory copied up only because of them are
 * not reported: a directory the lowers have counts as changed when a reported path is below it or its
 * owner or mode differ.
 */
export async function listChanges(upper: string, lowers: readonly string[], exclude: readonly string[], driver: StorageDriverName = 'overlay'): Promise<Change[]> {
  const excluded = excluder(exclude);
  const fmt = upperFormat(driver);
  const opaqueUpper = await opaqueDirs(upper, fmt.opaque);
  const all: { rel: string; st: Stats; whiteout: boolean }[] = [];
  for await (const e of walk(upper)) {
    const marker = fuseMarker(fmt, e.rel, e.st);
    if (marker?.kind === 'opaque') opaqueUpper.add(path.posix.dirname(e.rel));
    if (!marker) all.push({ ...e, whiteout: isWhiteout(e.st) });
    else if (marker.kind === 'whiteout') all.push({ rel: marker.rel, st: e.st, whiteout: true });
  }
  // A `.wh.NAME` sorts elsewhere than NAME would: back into the walk's order (parents first, names sorted).
  if (fmt.fuse) all.sort((a, b) => comparePaths(a.rel, b.rel));
  const lowerOpaque = new Map<string, Set<string>>();
  const opaque = async (layer: string, dir: string) => {
    let set = lowerOpaque.get(layer);
    if (!set) lowerOpaque.set(layer, (set = await opaqueDirs(layer)));
    return set.has(dir);
  };
  const changes: Change[] = [];
  const entries: { rel: string; kind: ChangeKind; keepIfChild: boolean }[] = [];
  for (const { rel, st, whiteout } of all) {
    if (excluded(rel)) continue;
    // Below an opaque dir (or a dir the lowers lack) the lowers do not show through.
    const hidden = ancestors(rel).some((a) => opaqueUpper.has(a));
    if (whiteout) {
      entries.push({ rel, kind: 'D', keepIfChild: false });
      continue;
    }
    const lower = hidden ? undefined : await inLowers(lowers, rel, opaque);
    if (!lower) entries.push({ rel, kind: 'A', keepIfChild: false });
    else if (fmt.fuse && untouchedCopy(st, lower)) {
      // fuse-overlayfs copies up the other names of a hard-linked lower file when one is deleted: the copy,
      // with the lower's size, times and owner, is not a change the container made (Docker's naive diff agrees).
    } else {
      const same = st.isDirectory() && lower.isDirectory() && st.mode === lower.mode && st.uid === lower.uid && st.gid === lower.gid && !opaqueUpper.has(rel);
      entries.push({ rel, kind: 'C', keepIfChild: same });
    }
  }
  // A copied-up directory with nothing reported below it is not a change of the container's.
  const reported = new Set<string>();
  for (const e of [...entries].reverse()) {
    if (e.keepIfChild && !reported.has(e.rel)) continue;
    for (const a of ancestors(e.rel)) reported.add(a);
    changes.push({ kind: e.kind, path: '/' + e.rel });
  }
  return changes.reverse();
}

export interface PackOptions {
  /** the upper dir of an overlay (of this driver; true: the kernel's): whiteouts and opaque dirs become OCI `.wh.` entries */
  overlay?: boolean | StorageDriverName;
  /** relative paths left out with everything below them */
  exclude?: readonly string[];
  /** a user-namespaced container's maps: owners are written as the container sees them, not the host */
  idmap?: IdMapping;
}

/**
 * A folder as a tar stream (PAX, numeric owners, hard links kept, xattrs as SCHILY.xattr). With
 * `overlay`, the OCI layer form of an overlay upper dir (image-spec layer.md "Whiteouts"): a 0:0 char
 * device NAME becomes an empty `.wh.NAME`, an opaque dir gets a `.wh..wh..opq` entry; overlayfs'
 * own `trusted.overlay.*` xattrs are never written.
 */
export function packTree(root: string, opts: PackOptions = {}): Readable {
  const pack = tar.pack();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  pack.pipe(out);
  const excluded = excluder(opts.exclude ?? []);
  const fmt = upperFormat(opts.overlay === true ? 'overlay' : opts.overlay || 'overlay');
  (async () => {
    const xattrs = await readXattrs(root);
    const links = new Map<string, string>();
    const entry = (header: Parameters<ReturnType<typeof tar.pack>["entry"]>[0], body?: Buffer) => new Promise<void>((resolve, reject) => {
      pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
    for await (const { rel, st } of walk(root)) {
      const marker = opts.overlay ? fuseMarker(fmt, rel, st) : undefined;
      if (excluded(marker?.kind === 'whiteout' ? marker.rel : rel)) continue;
      const base = { ...ownersOf(st, opts.idmap), mode: st.mode & 0o7777, mtime: st.mtime };
      if (marker) {
        // already the OCI form: the whiteout as it is; the opaque marker goes with its folder, below
        if (marker.kind === 'whiteout') await entry({ name: rel, type: 'file', size: 0, ...base, mode: 0o644 });
        continue;
      }
      const pax: Record<string, string> = {};
      let opaque = false;
      for (const [name, value] of Object.entries(xattrs.get(rel) ?? {})) {
        if (fmt.own.some((p) => name.startsWith(p))) {
          if (opts.overlay && fmt.opaque.includes(name) && value.toString() === 'y') opaque = true;
          continue;
        }
        pax[`SCHILY.xattr.${name}`] = value.toString('latin1');
      }
      if (opts.overlay && fmt.fuse && st.isDirectory() && !opaque) opaque = await fsp.lstat(path.join(root, rel, OPQ)).then(() => true, () => false);
      const extra = Object.keys(pax).length ? { pax } : {};
      if (opts.overlay && isWhiteout(st)) {
        const dir = path.posix.dirname(rel);
        await entry({ name: (dir === '.' ? '' : dir + '/') + '.wh.' + path.posix.basename(rel), type: 'file', size: 0, ...base, mode: 0o644 });
        continue;
      }
      if (st.isDirectory()) {
        await entry({ name: rel + '/', type: 'directory', ...base, ...extra });
        if (opaque) await entry({ name: `${rel}/${OPQ}`, type: 'file', size: 0, ...base, mode: 0o644 });
      } else if (st.isSymbolicLink()) {
        await entry({ name: rel, type: 'symlink', linkname: await fsp.readlink(path.join(root, rel)), ...base, ...extra });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first) {
          await entry({ name: rel, type: 'link', linkname: first, ...base, ...extra });
          continue;
        }
        if (st.nlink > 1) links.set(key, rel);
        await packFile(pack, { name: rel, size: st.size, ...base, ...extra }, path.join(root, rel));
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        await entry({ name: rel, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00), ...base, ...extra });
      } else if (st.isFIFO()) {
        await entry({ name: rel, type: 'fifo', ...base, ...extra });
      }
      // sockets are not archived (tar cannot hold them; GNU tar skips them too)
    }
    pack.finalize();
  })().catch((err: unknown) => {
    out.destroy(err as Error);
    pack.destroy();
  });
  return out;
}

/** The kernel shows a host id outside the maps as the overflow id, 65534: so does the tar. */
function ownersOf(st: { uid: number; gid: number }, idmap: IdMapping | undefined): { uid: number; gid: number } {
  if (!idmap) return { uid: st.uid, gid: st.gid };
  return { uid: toContainerId(idmap.uid, st.uid) ?? 65534, gid: toContainerId(idmap.gid, st.gid) ?? 65534 };
}
