import { mkdirSync, promises as fsp, type Stats } from 'node:fs';
import { chownTree, hostIds, tarOwnerMaps } from './userns.js';
import { ownedTempName } from '../util/fs.js';
import { toHostId, type IdMapping } from '../userns/index.js';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { CopyOptions, CopyResult, PathStat } from '../types.js';
import { BadStateError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { extractNoFollow, joinTars, pumpTar, spawnTar, tarWarnings, type TarStage } from '../util/tar.js';
import { MAX_SYMLINKS } from '../util/inroot.js';
import { withLock } from '../util/lock.js';
import { mustLoad, observed, type ContainerContext } from './context.js';
import { freeze } from './freeze.js';
import { resolveNoticed } from './lost.js';
import type { MountPoint } from './ports.js';
import { containerPaths, type ContainerRecord } from './record.js';

/**
 * `docker cp`: GNU tar does the reading and the writing (a same-run benchmark holds cp to tar's own
 * throughput), and this file decides which host paths it may touch. Container paths are resolved here,
 * one component at a time inside the container's root (an absolute link target starts again at the
 * root, a `..` stops there: securejoin's rule, which Docker uses), and against the container's binds and
 * volumes, as Docker resolves them against its mounts. A running container is paused meanwhile (Docker's
 * fix for CVE-2018-15664), so nothing moves between the resolution and the copy. Writes into the
 * container go through a private bind mount of the destination folder with `nosymfollow`: a link already
 * in the container, or one the archive makes, can never carry tar out of it.
 */

/** A container's root filesystem as the host sees it, held mounted (and the container paused) until `release`. */
export interface RootView {
  root: string;
  mounts: readonly MountPoint[];
  name: string;
  release(): Promise<void>;
}

export async function openRootfs(ctx: ContainerContext, rec: ContainerRecord, opts: { pause: boolean }): Promise<RootView> {
  const wasMounted = !!(await ctx.deps.snapshots.get(rec.id))?.mounted;
  const root = await ctx.deps.snapshots.mount(rec.id);
  const thaw = opts.pause && (await observed(ctx, rec)).state === 'running' ? await freeze(ctx, rec.id) : undefined;
  return {
    root, mounts: rec.config.mounts ?? [], name: rec.name,
    async release() {
      await thaw?.().catch(() => {});
      if (wasMounted) return;
      // Unless a start mounted it for itself meanwhile.
      await withLock(containerPaths(ctx.layout, rec.id).lock, async () => {
        const now = await observed(ctx, await mustLoad(ctx, rec.id));
        if (now.state !== 'running' && now.state !== 'paused' && now.state !== 'restarting') await ctx.deps.snapshots.unmount(rec.id);
      });
    },
  };
}

interface Resolved {
  /** absolute in the container, links resolved */
  container: string;
  host: string;
  /** lstat of `host`; absent when the last component does not exist */
  stat?: Stats;
}

function hostPathOf(view: RootView, cpath: string): string {
  let best: MountPoint | undefined;
  for (const m of view.mounts) {
    if ((cpath === m.destination || cpath.startsWith(m.destination.replace(/\/$/, '') + '/')) && (!best || m.destination.length > best.destination.length)) best = m;
  }
  if (!best) return path.join(view.root, cpath);
  if (best.type === 'tmpfs') {
    throw new InvalidArgumentError('path', `${cpath} is on the tmpfs mount ${best.destination} of container ${view.name}, which the host cannot see`, 'copy through "berth exec CONTAINER tar" instead');
  }
  return path.join(best.source, path.posix.relative(best.destination, cpath));
}

/** Resolves `cpath` in the container; the last component's link is followed only with `followLast`. */
export async function resolveInContainer(view: RootView, cpath: string, followLast: boolean): Promise<Resolved> {
  const pending = cpath.split('/').filter((p) => p && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const container = '/' + [...done, part].join('/');
    const host = hostPathOf(view, container);
    let st: Stats;
    try {
      st = await fsp.lstat(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      if (pending.length) throw new NotFoundError('file', `${cpath} in container ${view.name}`, 'check the path with "berth exec CONTAINER ls"', { cause: err });
      return { container, host };
    }
    if (st.isSymbolicLink() && (pending.length || followLast)) {
      if (++links > MAX_SYMLINKS) throw new InvalidArgumentError('path', `too many levels of symbolic links in ${cpath} in container ${view.name}`);
      const target = await fsp.readlink(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    if (pending.length && !st.isDirectory()) throw new NotFoundError('file', `${cpath} in container ${view.name}`, `${container} is not a directory`);
    done.push(part);
    if (!pending.length) return { container, host, stat: st };
  }
  const host = hostPathOf(view, '/');
  return { container: '/', host, stat: await fsp.lstat(host) };
}

/** An argument for GNU tar's --transform: renames the first component `from` to `to`, hard link targets too. */
export function renameTransform(from: string, to: string): string {
  const re = from.replace(/[\\^$.*[\],]/g, (c) => '\\' + c);
  const rep = to.replace(/[\\&,]/g, (c) => '\\' + c);
  return `--transform=s,^${re}\\(/\\|$\\),${rep}\\1,rhS`;
}

/** How an archive of `name` (its top entry) lands in the folder `dir`. */
export interface Landing {
  dir: string;
  /** the top entry's name there (a rename) */
  as?: string;
  /** copy what is in the top folder, not the folder */
  contents?: boolean;
}

/**
 * Docker's rules (cli/command/container/cp.go and archive.CopyInfo): a file lands as DEST when DEST is a
 * file or does not exist, inside DEST when it is a folder; a folder is created as DEST, or lands inside
 * it, or only its contents do when SRC ends with `/.`.
 */
export function landing(src: { isDir: boolean; contents: boolean; name: string }, dest: { path: string; isDir?: boolean; exists: boolean; slash: boolean }, where: string): Landing {
  if (dest.exists) {
    if (dest.isDir) return src.contents && src.isDir ? { dir: dest.path, contents: true } : { dir: dest.path };
    if (src.isDir) throw new InvalidArgumentError('destination', `cannot copy a directory to a file: ${where}`, 'give a folder as the destination');
    return { dir: path.dirname(dest.path), as: path.basename(dest.path) };
  }
  if (dest.slash && !src.isDir) throw new NotFoundError('file', `${where} (the destination directory must exist)`, 'create the folder first');
  return { dir: path.dirname(dest.path), as: path.basename(dest.path) };
}

/**
 * The extended attributes a copy carries, both ways (tar reads and writes nothing else): the user's own and
 * file capabilities, as Docker's archive keeps security.capability. Never trusted.* (overlayfs keeps its
 * whiteouts and redirects there) nor security.* beyond capabilities, even from a tar stream that has them.
 */
export const XATTRS = ['--xattrs', '--xattrs-include=user.*', '--xattrs-include=security.capability'];

export function extractArgs(to: Landing, top: string, archive: boolean): string[] {
  const args = ['--numeric-owner', archive ? '--same-owner' : '--no-same-owner', '--same-permissions', ...XATTRS];
  if (to.contents) args.push('--strip-components=1');
  else if (to.as !== undefined && to.as !== top) args.push(renameTransform(top, to.as));
  return args;
}

/** Reads `src` from the container into `dest`: a host path (Docker's landing rules) or a tar stream. */
export async function copyFromContainer(ctx: ContainerContext, ref: string, src: string, dest: string | Writable, opts: CopyOptions = {}): Promise<CopyResult> {
  const rec = await resolveNoticed(ctx, ref);
  const cpath = absolute(src);
  const contents = /(^|\/)\.$/.test(src);
  const maps = await tarOwnerMaps(rec.config.userns?.idmap);
  const view = await openRootfs(ctx, rec, { pause: opts.pause !== false }).catch(async (err: unknown) => { await maps.cleanup(); throw err; });
  try {
    const found = await resolveInContainer(view, cpath, !!opts.followLink || contents || src.endsWith('/'));
    if (!found.stat) throw new NotFoundError('file', `${cpath} in container ${rec.name}`, 'check the path with "berth exec CONTAINER ls"');
    const isDir = found.stat.isDirectory();
    if ((src.endsWith('/') || contents) && !isDir) throw new InvalidArgumentError('path', `${cpath} in container ${rec.name} is not a directory`);
    // The archive's top entry is named as the user named it (the link's name with -L, as Docker).
    const want = found.container === '/' ? '.' : path.posix.basename(path.posix.normalize(cpath)) || '.';
    const have = path.basename(found.host);
    const pack = ['-c', '-f', '-', '--numeric-owner', ...maps.args, ...XATTRS];
    const create = [...pack,
      '-C', found.container === '/' ? found.host : path.dirname(found.host), ...(want !== have && want !== '.' ? [renameTransform(have, want)] : []), '--', want === '.' ? '.' : have];
    if (typeof dest !== 'string') {
      // `DIR/.` as a stream holds the folder's contents as `./...`, as Docker's daemon sends it: the docker
      // CLI renames that leading `.` to the destination's name, and would mangle any other first dot.
      const reader = spawnTar(contents && isDir ? [...pack, '-C', found.host, '--', '.'] : create, 'ignore');
      const bytes = await pumpTar(reader.child.stdout!, dest, [reader]);
      return { bytes, warnings: [] };
    }
    const to = landing({ isDir, contents: contents || want === '.', name: want }, await hostDest(dest), dest);
    if (want === '.' && !to.contents) await fsp.mkdir(path.join(to.dir, to.as ?? '.'), { recursive: true });
    const target = want === '.' && !to.contents ? { dir: path.join(to.dir, to.as ?? '.'), contents: true } : to;
    // No await from here to the pipe (spawnTar).
    const reader = spawnTar(['--totals', ...create], 'ignore');
    return await joinTars(reader, spawnTar(['-x', '-f', '-', '-C', target.dir, ...extractArgs(target, want, !!opts.archive)], reader));
  } finally {
    await view.release();
    await maps.cleanup();
  }
}

export async function hostDest(dest: string): Promise<{ path: string; isDir?: boolean; exists: boolean; slash: boolean }> {
  const slash = dest.endsWith('/') || /(^|\/)\.$/.test(dest);
  const st = await fsp.stat(dest).catch(() => undefined);
  if (!st) {
    const parent = await fsp.stat(path.dirname(path.resolve(dest))).catch(() => undefined);
    if (!parent?.isDirectory()) throw new NotFoundError('file', `${path.dirname(path.resolve(dest))} (the destination's folder)`, 'create the folder first');
  }
  return { path: path.resolve(dest), isDir: st?.isDirectory(), exists: !!st, slash };
}

/** Writes into the container at `dest`: a host path's file or folder (Docker's landing rules), or a tar stream into a folder. */
export async function copyToContainer(ctx: ContainerContext, ref: string, dest: string, src: string | Readable, opts: CopyOptions = {}): Promise<CopyResult> {
  const rec = await resolveNoticed(ctx, ref);
  const cpath = absolute(dest);
  let source: { host: string; name: string; isDir: boolean; contents: boolean } | undefined;
  if (typeof src === 'string') {
    const host = opts.followLink ? await fsp.realpath(src).catch(() => src) : src;
    const st = await fsp.lstat(host).catch((err: unknown) => {
      throw new NotFoundError('file', `${src} on the host`, 'check the path', { cause: err });
    });
    source = { host: path.resolve(host), name: path.basename(path.resolve(src)), isDir: st.isDirectory(), contents: /(^|\/)\.$/.test(src) };
  }
  const view = await openRootfs(ctx, rec, { pause: opts.pause !== false });
  try {
    const found = await resolveInContainer(view, cpath, true);
    if (found.stat?.isSymbolicLink()) throw new InvalidArgumentError('path', `${cpath} in container ${rec.name} is a link that leads nowhere`);
    const where = `${rec.name}:${cpath}`;
    const readOnly = view.mounts.find((m) => !m.rw && (found.container === m.destination || found.container.startsWith(m.destination + '/')));
    if (readOnly) throw new BadStateError(`${cpath} is on the read-only mount ${readOnly.destination} of container ${rec.name}`, 'mount it read-write to copy into it');
    let to: Landing;
    let top = '.';
    let reader: TarStage | undefined;
    if (!source) {
      if (!found.stat?.isDirectory()) throw new InvalidArgumentError('destination', `"${cpath}" must be a directory in container ${rec.name}`, 'a tar stream is extracted into a folder');
      to = { dir: found.host };
    } else {
      if (!found.stat) {
        const parent = await fsp.stat(path.dirname(found.host)).catch(() => undefined);
        if (!parent?.isDirectory()) throw new NotFoundError('file', `${path.posix.dirname(found.container)} in container ${rec.name}`, 'create the folder first');
      }
      to = landing(source, { path: found.host, isDir: found.stat?.isDirectory(), exists: !!found.stat, slash: dest.endsWith('/') }, where);
      top = path.basename(source.host);
      reader = spawnTar(['--totals', '-c', '-f', '-', '--numeric-owner', ...XATTRS, '-C', path.dirname(source.host),
        ...(top !== source.name ? [renameTransform(top, source.name)] : []), '--', top], 'ignore');
      top = source.name;
    }
    const idmap = rec.config.userns?.idmap;
    if (idmap) return await extractMapped(containerPaths(ctx.layout, rec.id).dir, to.dir, extractArgs(to, top, true), reader ?? src as Readable, idmap, !!opts.archive);
    if (reader) return await joinTars(reader, extractNoFollow(to.dir, extractArgs(to, top, !!opts.archive), reader));
    const writer = extractNoFollow(to.dir, extractArgs(to, top, !!opts.archive));
    const bytes = await pumpTar(src as Readable, writer, [writer]);
    return { bytes, warnings: tarWarnings(await writer.done) };
  } finally {
    await view.release();
  }
}

/**
 * Docker's cp into a container under userns-remap: the files belong to the container's root (its host
 * ids), or with -a to the archive's owners seen through the container's maps (an id the maps leave out
 * becomes the mapped nobody). GNU tar maps owners only when it creates an archive, so the archive is
 * extracted as it is into a private folder beside the container's record, its owners shifted there, and
 * that copied in by a second tar that keeps them. A killed copy leaves the folder to the container's rm.
 */
async function extractMapped(ctrDir: string, dir: string, args: string[], src: TarStage | Readable, idmap: IdMapping, archive: boolean,
  hint = 'copy without -a (the files then belong to the container\'s root), or give the container maps that hold these ids'): Promise<CopyResult> {
  const staging = path.join(ctrDir, ownedTempName('.cp-in'));
  // Synchronously: a reader already spawned must be piped on with no await between (spawnTar).
  mkdirSync(staging, { mode: 0o700 });
  try {
    let bytes: number;
    const warnings: string[] = [];
    if ('child' in src) {
      const res = await joinTars(src, extractNoFollow(staging, args, src));
      bytes = res.bytes;
      warnings.push(...res.warnings);
    } else {
      const writer = extractNoFollow(staging, args);
      bytes = await pumpTar(src, writer, [writer]);
      warnings.push(...tarWarnings(await writer.done));
    }
    const root = hostIds(idmap, 0, 0);
    const names = await fsp.readdir(staging);
    const shifted = (file: string) => (st: Stats) => {
      if (!archive) return root;
      const uid = toHostId(idmap.uid, st.uid);
      const gid = toHostId(idmap.gid, st.gid);
      // Docker fails the same copy: an owner the container cannot see would be guessed, not kept.
      if (uid === undefined || gid === undefined) {
        throw new InvalidArgumentError('cp', `${file === staging ? 'an entry' : path.relative(staging, file)} of the copy is owned by ${st.uid}:${st.gid}, which the container's user namespace does not map`, hint);
      }
      return { uid, gid };
    };
    for (const name of names) await chownTree(path.join(staging, name), shifted);
    if (!names.length) return { bytes, warnings };
    const keep = ['--numeric-owner', '--same-owner', '--same-permissions', ...XATTRS];
    const reader = spawnTar(['-c', '-f', '-', ...keep, '-C', staging, '--', ...names], 'ignore');
    const res = await joinTars(reader, extractNoFollow(dir, keep, reader));
    return { bytes, warnings: [...warnings, ...res.warnings] };
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

/**
 * docker cp's stat of a path (the Engine API's HEAD archive): the last link is described, not followed,
 * and where it leads is resolved inside the container, as Docker reports it. Read without pausing: a stat
 * is one lstat, nothing to hold still.
 */
export async function statInContainer(ctx: ContainerContext, ref: string, cpath: string): Promise<PathStat> {
  const rec = await resolveNoticed(ctx, ref);
  const abs = absolute(cpath);
  const view = await openRootfs(ctx, rec, { pause: false });
  try {
    const found = await resolveInContainer(view, abs, false);
    if (!found.stat) throw new NotFoundError('file', `${abs} in container ${rec.name}`, 'check the path with "berth exec CONTAINER ls"');
    const linkTarget = found.stat.isSymbolicLink() ? (await resolveInContainer(view, found.container, true)).container : '';
    const st = await fsp.lstat(found.host, { bigint: true });
    const mtime = new Date(Number(st.mtimeMs)).toISOString().replace(/\.\d{3}Z$/, `.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}Z`);
    return { name: path.posix.basename(found.container) || '/', size: Number(st.size), mode: Number(st.mode), mtime, linkTarget };
  } finally {
    await view.release();
  }
}

/** What `cpath` is in a (stopped) container, links followed inside its root: for a build's COPY landing rules. */
export async function pathKind(ctx: ContainerContext, ref: string, cpath: string): Promise<'dir' | 'file' | 'missing'> {
  const rec = await resolveNoticed(ctx, ref);
  const view = await openRootfs(ctx, rec, { pause: false });
  try {
    const found = await resolveInContainer(view, absolute(cpath), true).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    if (!found?.stat) return 'missing';
    return found.stat.isDirectory() ? 'dir' : 'file';
  } finally {
    await view.release();
  }
}

/**
 * A build's COPY/ADD: `tar` (names relative, owners as the builder set them) extracted into the folder
 * `dir` of a stopped container, the folders missing on the way made as Docker's COPY makes them (root,
 * 0755). Each folder is made under its resolved parent, so a link in the image cannot lead out of it.
 */
export async function extractIntoContainer(ctx: ContainerContext, ref: string, dir: string, tar: Readable, owner: { uid: number; gid: number } = { uid: 0, gid: 0 }): Promise<void> {
  const rec = await resolveNoticed(ctx, ref);
  // Under userns-remap the step's container sees host ids through its maps: owners are shifted into them.
  const idmap = rec.config.userns?.idmap;
  const folderOwner = hostIds(idmap, owner.uid, owner.gid);
  const view = await openRootfs(ctx, rec, { pause: false });
  try {
    const parts = absolute(dir).split('/').filter(Boolean);
    let found = await resolveInContainer(view, '/', true);
    for (const [i, part] of parts.entries()) {
      const next = path.posix.join(found.container, part);
      found = await resolveInContainer(view, next, true);
      if (!found.stat) {
        await fsp.mkdir(found.host, { mode: 0o755 });
        await fsp.chown(found.host, folderOwner.uid, folderOwner.gid);
        found = await resolveInContainer(view, next, true);
      }
      if (!found.stat?.isDirectory()) throw new InvalidArgumentError('destination', `${'/' + parts.slice(0, i + 1).join('/')} in the image is not a directory`, 'copy to a folder');
    }
    const keep = ['--numeric-owner', '--same-owner', '--same-permissions', ...XATTRS];
    if (idmap) {
      await extractMapped(containerPaths(ctx.layout, rec.id).dir, found.host, keep, tar, idmap, true,
        'give --chown ids below the size of the build\'s ranges (65536), or build without userns-remap');
      return;
    }
    const writer = extractNoFollow(found.host, keep);
    await pumpTar(tar, writer, [writer]);
    await writer.done;
  } finally {
    await view.release();
  }
}

function absolute(p: string): string {
  if (p.includes('\0')) throw new InvalidArgumentError('path', 'a path has a NUL byte');
  return path.posix.normalize('/' + p);
}

