import { createHash, type Hash } from 'node:crypto';
import fs, { constants } from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, CorruptError, RuntimeError } from '../errors.js';
import type { Digest } from '../ids.js';
import { run, type CommandError } from '../util/exec.js';
import { failpoint } from '../util/failpoint.js';
import { sniff } from './compression.js';
import { hasCommand } from './hosttools.js';
import type { Compression, UnpackOptions } from './index.js';
import { SplitExtract } from './tarreader.js';
import { SplitRecorder } from './tarsplit.js';
import { ancestors, entryPath, isWithin, linkTarget, parseWhiteout, type Whiteout } from './tarpath.js';
import { applyXattrs, type XattrSet } from './xattrs.js';
import { overlayXattrs } from './overlay-xattr.js';

export interface Unpacked {
  diffId: Digest;
  size: number;
  compression: Compression;
  /** what could not be reproduced exactly (xattrs without setfattr, undecodable xattr values) */
  warnings: string[];
  /** true when a tar-split record was written to `splitDir` (an uncompressed layer) */
  split: boolean;
}

const HINT = 'the layer is malformed or hostile; pull or build the image from a trusted source';
/** Linux's limits (limits.h, xattr.h). */
const NAME_MAX = 255;
const PATH_MAX = 4096;
const XATTR_SIZE_MAX = 65536;
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.', 'system.'];
/** What one layer's xattrs may add up to, held in memory until they are set. */
const XATTR_TOTAL = 64 << 20;
const OPEN_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** mknod runs are rare (devices, whiteouts) but a layer may have hundreds of whiteouts. */
const MKNOD_PARALLEL = 8;

/**
 * The store's UnpackOptions as this extractor sees them: the layer store turns `keepSplit` into the folder
 * that receives the tar-split record.
 */
export type UnpackLayerOptions = Pick<UnpackOptions, 'srcDigest' | 'onTarEntry'> & {
  /**
   * The layer folder holding `root` as `diff/`: for an uncompressed tar, record its tar-split there so
   * the blob can be rebuilt instead of kept (content of replaced files is moved beside, not deleted).
   */
  splitDir?: string;
};

/**
 * Unpacks a layer tar (plain, gzip or zstd) into `root`, an empty folder, in overlay form, hashing the
 * uncompressed bytes on the way to get the diffID. Never writes outside `root`. On failure `root` holds a
 * partial tree that the caller deletes.
 */
export async function unpackLayer(src: Readable, root: string, opts: UnpackLayerOptions = {}): Promise<Unpacked> {
  let compression: Compression;
  let hash: Hash | undefined;
  let recorder: SplitRecorder | undefined;
  let writer = new LayerWriter(root);
  // The writer's own failure (a full disk, a refused entry) is the cause: when it tears the pipeline down,
  // a decoder upstream may report its premature end first, and that must not pass for a corrupt input.
  let writeError: Error | undefined;
  try {
    const sniffed = await sniff(src);
    compression = sniffed.compression;
    if (compression === 'none' && opts.splitDir) {
      recorder = new SplitRecorder(opts.splitDir);
      writer = new LayerWriter(root, recorder);
    }
    const onEntry = (header: tar.Header, data: EntryData, next: (err?: Error | null) => void) => {
      writer.add(header, data).then(() => next(), (err: Error) => {
        writeError ??= err;
        next(err);
      });
    };
    let extract: NodeJS.WritableStream;
    if (recorder) extract = new SplitExtract(recorder, onEntry, opts.onTarEntry);
    else {
      const tarStream = tar.extract();
      tarStream.on('entry', (header, data, next) => onEntry(header, data as unknown as EntryData, next));
      extract = tarStream as unknown as NodeJS.WritableStream;
    }
    const taps: Transform[] = [];
    if (compression !== 'none' || opts.srcDigest === undefined) {
      hash = createHash('sha256');
      taps.push(hashingTap(hash));
    }
    await pipeline([sniffed.stream, ...sniffed.decoders, ...taps, extract]);
    await writer.idle();
  } catch (err) {
    // The entry being written sees the failure too; let it stop before the caller deletes the tree.
    await writer.idle().catch(() => {});
    recorder?.close();
    throw asCorrupt(writeError ?? err);
  }
  try {
    await writer.finish();
    recorder?.finish();
  } finally {
    recorder?.close();
  }
  const diffId = hash ? (`sha256:${hash.digest('hex')}` as Digest) : await opts.srcDigest!;
  return { diffId, size: writer.size, compression, warnings: writer.warnings, split: !!recorder };
}

function hashingTap(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

/** Our own checks and disk errors (they carry an errno) keep their class; the rest is a broken stream. */
function asCorrupt(err: unknown): unknown {
  if (err instanceof BerthError || (err as NodeJS.ErrnoException).syscall) return err;
  return new CorruptError(`layer stream is corrupt or truncated: ${(err as Error).message}`, HINT, { cause: err });
}

/** tar-stream's entry stream, or ours (a PassThrough): both iterate and drain alike. */
type EntryData = AsyncIterable<unknown> & { on(ev: string, fn: (...a: never[]) => void): unknown; resume(): unknown };

interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

interface NodeSpec extends Meta {
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
}

/**
 * Writes entries one at a time. Safety rests on one invariant: `dirs` holds only paths verified to be real
 * directories (lstat, never followed), every write happens under such a path, and replacing anything
 * forgets all that was known below it. Work that would cost a process per entry (device nodes, xattrs)
 * and directory times (which later entries would bump) are collected and done in `finish`.
 *
 * fs calls are synchronous on purpose: each async call is a round trip through libuv's thread pool, and
 * at six calls per file that latency, not the disk, made a layer of 35k small files 2-3× slower. The
 * calls take microseconds; decompression and hashing keep running on the pool meanwhile. Layers that
 * unpack at the same time (a pull) get a thread each (unpack-thread.ts), so their calls use every core.
 */
class LayerWriter {
  size = 0;
  readonly warnings: string[] = [];
  private readonly dirs = new Set<string>(['']);
  private readonly dirMeta = new Map<string, Meta>();
  private readonly nodes = new Map<string, NodeSpec>();
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  private xattrBytes = 0;
  private current: Promise<void> = Promise.resolve();
  /** Owner a new file gets by itself, when the tree guarantees it (see `creationOwner`). */
  private readonly owner: { uid: number; gid: number } | undefined;

  constructor(private readonly root: string, private readonly split?: SplitRecorder) {
    this.owner = creationOwner(root);
  }

  add(header: tar.Header, data: EntryData): Promise<void> {
    this.current = this.entry(header, data);
    return this.current;
  }

  /** tar-stream may finish before the last entry's handler has: wait for it. */
  async idle(): Promise<void> {
    await this.current;
  }

  async finish(): Promise<void> {
    await this.makeNodes();
    await this.setXattrs();
    // Directories last: every entry made inside one bumps its mtime.
    for (const [rel, meta] of this.dirMeta) this.applyMeta(rel, meta);
  }

  private async entry(header: tar.Header, data: EntryData): Promise<void> {
    const rel = entryPath(header.name);
    // "." or "./" names the layer root: only a directory may, or a symlink/link/file there would replace
    // the root itself, and every later entry would be written through it, anywhere on the host.
    if (!rel && header.type !== 'directory') {
      throw new CorruptError(`layer entry "${header.name}" of type ${header.type} names the layer root`, HINT);
    }
    this.checkLength(rel, header);
    const meta = metaOf(header);
    const whiteout = rel ? parseWhiteout(rel) : undefined;
    if (whiteout) return this.whiteout(whiteout, meta, data);
    this.collectXattrs(rel, header);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        return this.writeFile(rel, meta, data, header.size ?? 0);
      case 'directory':
        return this.makeDir(rel, meta);
      case 'symlink':
        return this.makeSymlink(rel, meta, header.linkname ?? '');
      case 'link':
        return this.makeHardLink(rel, linkTarget(header.name, header.linkname ?? ''));
      case 'character-device':
      case 'block-device':
      case 'fifo':
        return this.planNode(rel, { ...meta, type: header.type === 'fifo' ? 'p' : header.type === 'block-device' ? 'b' : 'c', major: header.devmajor ?? 0, minor: header.devminor ?? 0 });
      default:
        this.warnings.push(`skipped entry "${header.name}" of unsupported type ${header.type}`);
        return drain(data);
    }
  }

  /**
   * The kernel's limits, checked before any call so that a name too long is reported as the layer's
   * fault (ENAMETOOLONG would name our temp folder instead): 255 bytes a component, and 4096 bytes for
   * the whole path as it is passed, store folder included; a symlink target is stored as a path too.
   */
  private checkLength(rel: string, header: tar.Header): void {
    const fail = (why: string) => new CorruptError(`layer entry "${shorten(header.name)}" ${why}`, HINT);
    const check = (p: string, what: string) => {
      const long = p.split('/').find((c) => Buffer.byteLength(c) > NAME_MAX);
      if (long !== undefined) throw fail(`${what} a name component of ${Buffer.byteLength(long)} bytes; Linux allows ${NAME_MAX}`);
      const full = Buffer.byteLength(this.abs(p));
      if (full >= PATH_MAX) throw fail(`${what} a path of ${Buffer.byteLength(p)} bytes, ${full} with the store's folder; Linux allows ${PATH_MAX - 1}`);
    };
    check(rel, 'has');
    if (header.type === 'link' && header.linkname) check(entryPath(header.linkname), 'is a hard link whose target has');
    if (header.type === 'symlink' && Buffer.byteLength(header.linkname ?? '') >= PATH_MAX) {
      throw fail(`is a symlink whose target is ${Buffer.byteLength(header.linkname!)} bytes; Linux allows ${PATH_MAX - 1}`);
    }
  }

  private async whiteout(wh: Whiteout, meta: Meta, data: EntryData): Promise<void> {
    await drain(data);
    if (wh.kind === 'delete') {
      this.planNode(wh.path, { ...meta, mode: 0, type: 'c', major: 0, minor: 0 });
    } else if (wh.kind === 'opaque') {
      this.walk([...ancestors(wh.dir), wh.dir].filter(Boolean), true);
      this.setXattr(wh.dir, overlayXattrs().opaque, Buffer.from('y'), true);
    }
  }

  private async writeFile(rel: string, meta: Meta, data: EntryData, size: number): Promise<void> {
    if (!rel) throw new CorruptError('layer entry "." is a file, not the root directory', HINT);
    // Created with its final mode when the umask leaves it whole (0644, 0755: most files): one fchmod less.
    // The layer's folder is private (0700) until commit, so no one else sees it meanwhile.
    const plain = (meta.mode & ~0o777) === 0 && (meta.mode & UMASK) === 0;
    const fd = this.create(rel, (p) => fs.openSync(p, OPEN_NEW, plain ? meta.mode : 0o600));
    try {
      for await (const chunk of data) writeFully(fd, chunk as Buffer);
      // A file is the process's own at creation: chown only for other owners (most layers are all root's).
      // chown before chmod: chown clears setuid/setgid bits.
      if (meta.uid !== this.owner?.uid || meta.gid !== this.owner.gid) fs.fchownSync(fd, meta.uid, meta.gid);
      if (!plain) fs.fchmodSync(fd, meta.mode);
      fs.futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.size += size;
    failpoint('storage.unpack.mid-layer');
  }

  private makeDir(rel: string, meta: Meta): void {
    if (rel && !this.dirs.has(rel)) {
      this.ensureParents(rel);
      this.nodes.delete(rel);
      try {
        fs.mkdirSync(this.abs(rel), 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // tar semantics: a later entry replaces an earlier non-directory of the same name
        if (!fs.lstatSync(this.abs(rel)).isDirectory()) {
          this.replace(rel);
          fs.mkdirSync(this.abs(rel), 0o700);
        }
      }
      this.dirs.add(rel);
    }
    this.dirMeta.set(rel, meta);
  }

  private makeSymlink(rel: string, meta: Meta, target: string): void {
    this.create(rel, (p) => fs.symlinkSync(target, p));
    fs.lchownSync(this.abs(rel), meta.uid, meta.gid);
    fs.lutimesSync(this.abs(rel), meta.mtime, meta.mtime);
  }

  private makeHardLink(rel: string, target: string): void {
    // link(2) does not follow a symlink as its last component, so checking the parents keeps it inside.
    this.walk(ancestors(target), false);
    if (this.dirs.has(target)) throw new CorruptError(`layer entry "${rel}" is a hard link to a directory`, HINT);
    this.create(rel, (p) => {
      try {
        fs.linkSync(this.abs(target), p);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        throw new CorruptError(`layer entry "${rel}" is a hard link to "${target}", which is not in the layer`, HINT);
      }
    });
  }

  private planNode(rel: string, node: NodeSpec): void {
    if (!rel) throw new CorruptError('layer entry "." is a device, not the root directory', HINT);
    this.ensureParents(rel);
    if (fs.lstatSync(this.abs(rel), { throwIfNoEntry: false })) this.replace(rel);
    this.nodes.set(rel, node);
  }

  private collectXattrs(rel: string, header: tar.Header): void {
    const pax = (header as { pax?: Record<string, string> }).pax;
    if (!pax) return;
    for (const [key, value] of Object.entries(pax)) {
      if (key.startsWith('SCHILY.xattr.')) {
        // tar-stream decodes PAX values as UTF-8; a value that was not valid UTF-8 cannot be recovered.
        if (value.includes('\uFFFD')) this.warnings.push(`skipped xattr ${key.slice(13)} of "${header.name}": binary value mangled by the tar reader`);
        else this.setXattr(rel, key.slice(13), Buffer.from(value, 'utf8'));
      } else if (key.startsWith('LIBARCHIVE.xattr.')) {
        // libarchive's form: URL-encoded name, base64 value, so binary values survive.
        this.setXattr(rel, decodeURIComponent(key.slice(17)), Buffer.from(value, 'base64'));
      }
    }
  }

  private setXattr(rel: string, name: string, value: Buffer, fromWhiteout = false): void {
    // Only whiteout conversion may speak to overlayfs: a layer's own trusted.overlay.* (user.overlay.*
    // rootless) could forge opaque dirs or redirects over the layers below it.
    if (name.startsWith(overlayXattrs().prefix) && !fromWhiteout) {
      this.warnings.push(`skipped xattr ${name} of "${rel}": reserved for overlayfs`);
      return;
    }
    // Docker skips what the filesystem does not support (ENOTSUP); a namespace Linux lacks is that.
    if (!XATTR_NAMESPACES.some((ns) => name.startsWith(ns))) {
      this.warnings.push(`skipped xattr ${shorten(name)} of "${shorten(rel)}": not in a namespace Linux knows (${XATTR_NAMESPACES.join(', ')})`);
      return;
    }
    const bad = (why: string) => new CorruptError(`layer entry "${shorten(rel)}" has extended attribute ${shorten(name)} ${why}`, HINT);
    if (Buffer.byteLength(name) > NAME_MAX) throw bad(`whose name is ${Buffer.byteLength(name)} bytes; Linux allows ${NAME_MAX}`);
    if (value.length > XATTR_SIZE_MAX) throw bad(`whose value is ${value.length} bytes; Linux allows ${XATTR_SIZE_MAX}`);
    // They are all held until `finish` sets them in one call: bound what a layer can make us hold.
    this.xattrBytes += name.length + value.length;
    if (this.xattrBytes > XATTR_TOTAL) throw bad(`past ${XATTR_TOTAL >> 20} MiB of extended attributes in one layer`);
    let set = this.xattrs.get(rel);
    if (!set) this.xattrs.set(rel, (set = new Map()));
    set.set(name, value);
  }

  /** Creates an entry with `make`; if the name is taken, the old entry is replaced (later entries win). */
  private create<T>(rel: string, make: (abs: string) => T): T {
    this.ensureParents(rel);
    this.nodes.delete(rel);
    try {
      return make(this.abs(rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    this.replace(rel);
    return make(this.abs(rel));
  }

  private replace(rel: string): void {
    if (!rel) throw new CorruptError('a layer entry would replace the layer root', HINT);
    for (const known of [this.dirs, this.dirMeta, this.nodes, this.xattrs]) {
      for (const key of known.keys()) if (isWithin(key, rel)) known.delete(key);
    }
    this.split?.evict(rel);
    fs.rmSync(this.abs(rel), { recursive: true, force: true });
  }

  private ensureParents(rel: string): void {
    const parents = ancestors(rel);
    if (!parents.length || this.dirs.has(parents[parents.length - 1]!)) return;
    this.walk(parents, true);
  }

  /** Checks each directory with lstat, outermost first, so no path through a symlink is ever used. */
  private walk(dirs: readonly string[], create: boolean): void {
    for (const dir of dirs) {
      if (this.dirs.has(dir)) continue;
      if (this.nodes.has(dir)) {
        if (!create) throw new CorruptError(`layer entry refers to "${dir}", which is not in the layer`, HINT);
        this.nodes.delete(dir); // later entries win: a folder replaces a device or whiteout not yet made
      }
      const st = fs.lstatSync(this.abs(dir), { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) throw new CorruptError(`layer entry under "${dir}" would write through a symlink`, HINT);
      if (st && !st.isDirectory()) throw new CorruptError(`layer entry under "${dir}" needs it to be a directory, but it is a file`, HINT);
      if (!st) {
        if (!create) throw new CorruptError(`layer entry refers to "${dir}", which is not in the layer`, HINT);
        fs.mkdirSync(this.abs(dir), 0o755);
      }
      this.dirs.add(dir);
    }
  }

  private async makeNodes(): Promise<void> {
    const queue = [...this.nodes];
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [rel, node] = item;
        const devno = node.type === 'p' ? [] : [String(node.major), String(node.minor)];
        await run('mknod', ['-m', node.mode.toString(8), this.abs(rel), node.type, ...devno]);
        this.applyMeta(rel, node, false);
      }
    };
    await Promise.all(Array.from({ length: Math.min(MKNOD_PARALLEL, queue.length) }, worker));
  }

  private async setXattrs(): Promise<void> {
    const items: XattrSet[] = [];
    for (const [rel, set] of this.xattrs) {
      for (const [name, value] of set) {
        items.push({ path: rel, name, value });
      }
    }
    if (!items.length) return;
    if (!hasCommand('setfattr')) {
      if (items.some((x) => x.name === overlayXattrs().opaque)) {
        throw new RuntimeError('cannot mark opaque directories of the layer: setfattr is not installed', 'install the attr package (apt-get install attr)');
      }
      this.warnings.push(`skipped ${items.length} xattrs: setfattr is not installed`);
      return;
    }
    try {
      await applyXattrs(this.root, items);
    } catch (err) {
      const why = (err as CommandError).stderr?.trim().split('\n').at(-1) ?? (err as Error).message;
      throw new RuntimeError(`cannot set the layer's extended attributes on this filesystem: ${why}`,
        'the layer has xattrs the filesystem under the store refuses; put the store (--root) on ext4 or xfs, or rebuild the image without them', { cause: err });
    }
  }

  private applyMeta(rel: string, meta: Meta, chmod = true): void {
    const abs = this.abs(rel);
    fs.lchownSync(abs, meta.uid, meta.gid);
    if (chmod) fs.chmodSync(abs, meta.mode);
    fs.lutimesSync(abs, meta.mtime, meta.mtime);
  }

  private abs(rel: string): string {
    return rel ? path.join(this.root, rel) : this.root;
  }
}

/** Read once: a process's umask does not change while it unpacks, and workers may not set it. */
const UMASK = process.umask();

/**
 * Who owns a file made under `root` without a chown: the process's effective IDs, unless the group is
 * inherited instead (a setgid `root`, or a `grpid` mount, where a new file takes its folder's group). The
 * folders the writer makes below `root` inherit from it in turn, and get their own owner only in `finish`.
 */
function creationOwner(root: string): { uid: number; gid: number } | undefined {
  const uid = process.geteuid?.();
  const gid = process.getegid?.();
  if (uid === undefined || gid === undefined) return undefined;
  const st = fs.statSync(root);
  return st.gid === gid && (st.mode & 0o2000) === 0 ? { uid, gid } : undefined;
}

function metaOf(header: tar.Header): Meta {
  const pax = (header as { pax?: Record<string, string> }).pax;
  const num = (key: string, fallback: number | undefined) => (pax?.[key] !== undefined ? Number(pax[key]) : fallback ?? 0);
  const seconds = pax?.mtime !== undefined ? Number(pax.mtime) : (header.mtime?.getTime() ?? 0) / 1000;
  return {
    mode: (header.mode ?? 0o644) & 0o7777,
    uid: num('uid', header.uid),
    gid: num('gid', header.gid),
    mtime: new Date(Number.isFinite(seconds) ? seconds * 1000 : 0),
  };
}

async function drain(data: EntryData): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    data.on('end', resolve);
    data.on('error', reject);
    data.resume();
  });
}

/** writeSync may write less than asked (a full disk returns short before failing). */
function writeFully(fd: number, buf: Buffer): void {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/** Names in messages: a hostile one may be kilobytes long. */
function shorten(name: string): string {
  return name.length > 80 ? `${name.slice(0, 40)}…${name.slice(-20)} (${Buffer.byteLength(name)} bytes)` : name;
}
