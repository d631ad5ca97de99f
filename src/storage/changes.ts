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

/** Relative paths (no leading '/') under which nothing counts as a change: mount points and what is below. */
function excluder(exclude: readonly string[]): (rel: string) => boolean {
  const rels = exclude.map((p) => path.posix.normalize(p).replace(/^\/+|\/+$/g, '')).filter(Boolean);
  return (rel) => rels.some((x) => isWithin(rel, x));
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

/** Directories of `upper` marked opaque (they hide everything below them), read in one getfattr call. */
async function opaqueDirs(upper: string): Promise<Set<string>> {
  const OPAQUE_XATTR = overlayXattrs().opaque;
  const { stdout } = await run('getfattr', ['-R', '-P', '-h', '--absolute-names', '-d', '-m', `^${OPAQUE_XATTR.replace(/\./g, '\\.')}$`, upper], { timeout: 300_000 });
  const out = new Set<string>();
  let file: string | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = unquote(line.slice(8));
    else if (file && line.startsWith(`${OPAQUE_XATTR}=`)) {
      if (line.slice(OPAQUE_XATTR.length + 1).replace(/"/g, '') === 'y') out.add(path.relative(upper, file));
      file = undefined;
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
export async function listChanges(upper: string, lowers: readonly string[], exclude: readonly string[]): Promise<Change[]> {
  const excluded = excluder(exclude);
  const opaqueUpper = await opaqueDirs(upper);
  const lowerOpaque = new Map<string, Set<string>>();
  const opaque = async (layer: string, dir: string) => {
    let set = lowerOpaque.get(layer);
    if (!set) lowerOpaque.set(layer, (set = await opaqueDirs(layer)));
    return set.has(dir);
  };
  const changes: Change[] = [];
  const entries: { rel: string; kind: ChangeKind; keepIfChild: boolean }[] = [];
  for await (const { rel, st } of walk(upper)) {
    if (excluded(rel)) continue;
    // Below an opaque dir (or a dir the lowers lack) the lowers do not show through.
    const hidden = ancestors(rel).some((a) => opaqueUpper.has(a));
    if (isWhiteout(st)) {
      entries.push({ rel, kind: 'D', keepIfChild: false });
      continue;
    }
    const lower = hidden ? undefined : await inLowers(lowers, rel, opaque);
    if (!lower) entries.push({ rel, kind: 'A', keepIfChild: false });
    else {
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
  /** the upper dir of an overlay: whiteouts and opaque dirs become OCI `.wh.` entries */
  overlay?: boolean;
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
  (async () => {
    const xattrs = await readXattrs(root);
    const links = new Map<string, string>();
    const entry = (header: Parameters<ReturnType<typeof tar.pack>["entry"]>[0], body?: Buffer) => new Promise<void>((resolve, reject) => {
      pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
    for await (const { rel, st } of walk(root)) {
      if (excluded(rel)) continue;
      const base = { ...ownersOf(st, opts.idmap), mode: st.mode & 0o7777, mtime: st.mtime };
      const pax: Record<string, string> = {};
      let opaque = false;
      for (const [name, value] of Object.entries(xattrs.get(rel) ?? {})) {
        if (name.startsWith(overlayXattrs().prefix)) {
          if (opts.overlay && name === overlayXattrs().opaque && value.toString() === 'y') opaque = true;
          continue;
        }
        pax[`SCHILY.xattr.${name}`] = value.toString('latin1');
      }
      const extra = Object.keys(pax).length ? { pax } : {};
      if (opts.overlay && isWhiteout(st)) {
        const dir = path.posix.dirname(rel);
        await entry({ name: (dir === '.' ? '' : dir + '/') + '.wh.' + path.posix.basename(rel), type: 'file', size: 0, ...base, mode: 0o644 });
        continue;
      }
      if (st.isDirectory()) {
        await entry({ name: rel + '/', type: 'directory', ...base, ...extra });
        if (opaque) await entry({ name: `${rel}/.wh..wh..opq`, type: 'file', size: 0, ...base, mode: 0o644 });
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
