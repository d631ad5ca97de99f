import { createHash } from 'node:crypto';
import fs, { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { sniff } from '../storage/compression.js';
import { ancestors } from '../storage/tarpath.js';
import { cleanPath, goMatch, hasWildcards, parseDockerIgnore, type DockerIgnore } from './ignore.js';
import type { BuildContext, ContextEntry, OpenContextOptions } from './index.js';

const TAR_HINT = 'the context tar is malformed or hostile: make it with "tar -C DIR -c ." from a directory you trust';
const SOURCE_HINT = 'COPY and ADD read only files inside the build context: move the file into the context directory';
/** Linux's PATH_MAX: a longer name cannot be created anyway, and says the tar is not a real context. */
const PATH_MAX = 4096;
/** A Dockerfile on stdin (`berth build - < Dockerfile`) is text; anything this big is not one. */
const DOCKERFILE_MAX = 16 << 20;
/** Linux's own limit on symlinks followed while resolving one path (ELOOP). */
const MAX_LINKS = 40;
/** Files hashed at once: enough to keep the disk busy, few enough to stay far below the fd limit. */
const HASH_PARALLEL = 16;
/** Files up to this size are hashed from one read. */
const SMALL_FILE = 1 << 20;
const OPEN_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const TEMP_PREFIX = 'berth-context-';

/**
 * Opens a build context: a directory (used in place, never copied) or a tar stream, plain or gzip, which is
 * unpacked into a fresh folder under `opts.tempParent`. A stream that is not a tar is taken as a Dockerfile
 * with an empty context, as `docker build - < Dockerfile` does. On any failure nothing is left behind.
 */
export async function openContext(src: string | Readable, opts: OpenContextOptions = {}): Promise<BuildContext> {
  if (typeof src === 'string') {
    const root = await contextDir(src);
    return new Context(root, undefined, undefined, opts);
  }
  const parent = opts.tempParent ?? os.tmpdir();
  await fs.promises.mkdir(parent, { recursive: true });
  // The PID in the name lets removeStaleContexts tell a crashed build's folder from a running one's.
  const temp = await fs.promises.mkdtemp(path.join(parent, `${TEMP_PREFIX}${process.pid}-`));
  try {
    const root = path.join(temp, 'context');
    fs.mkdirSync(root, { mode: 0o755 });
    const dockerfileText = await unpackContext(src, root);
    return new Context(root, temp, dockerfileText, opts);
  } catch (err) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Removes the unpacked tar contexts that builds killed mid-way left in `tempParent` (their process is
 * gone); folders of builds still running are kept. For the engine to call before a build. Returns the
 * names removed.
 */
export async function removeStaleContexts(tempParent: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(tempParent);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = new RegExp(`^${TEMP_PREFIX}(\\d+)-`).exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await fs.promises.rm(path.join(tempParent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function contextDir(dir: string): Promise<string> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError('file', dir, 'give the build context as an existing directory, or "-" to read a tar from stdin', { cause: err });
    }
    throw err;
  }
  if (!st.isDirectory()) {
    throw new InvalidArgumentError('build context', `${dir} is not a directory`, 'give a directory, or "-" to read a tar (or a Dockerfile) from stdin');
  }
  return fs.promises.realpath(dir);
}

class Context implements BuildContext {
  private readonly ignore: DockerIgnore | undefined;
  /** content digests by file identity: a build hashes the same file for several steps; mtime only keys this memo */
  private readonly digests = new Map<string, Promise<string>>();
  private closed = false;

  constructor(readonly root: string, private readonly temp: string | undefined, private readonly stdinDockerfile: string | undefined,
    private readonly opts: OpenContextOptions) {
    this.ignore = opts.ignore === false ? undefined : this.loadIgnore();
  }

  /** BuildKit prefers `<Dockerfile>.dockerignore` beside the Dockerfile, then the root's `.dockerignore`. */
  private loadIgnore(): DockerIgnore | undefined {
    const candidates = [...(this.opts.dockerfile ? [`${cleanPath(this.opts.dockerfile)}.dockerignore`] : []), '.dockerignore'];
    for (const name of candidates) {
      if (name.startsWith('../') || name.startsWith('/')) continue;
      let text: string;
      try {
        text = fs.readFileSync(path.join(this.root, this.follow(name, name)), 'utf8');
      } catch (err) {
        if (err instanceof NotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      return parseDockerIgnore(text, name);
    }
    return undefined;
  }

  isIgnored(p: string): boolean {
    return this.ignore?.ignores(p) ?? false;
  }

  async readDockerfile(name?: string): Promise<{ name: string; text: string }> {
    if (this.stdinDockerfile !== undefined) return { name: name ?? 'Dockerfile', text: this.stdinDockerfile };
    const wanted = name ?? this.opts.dockerfile;
    // Docker's default name falls back to lower case; a name given with -f does not.
    const names = wanted ? [wanted] : ['Dockerfile', 'dockerfile'];
    for (const n of names) {
      const rel = cleanPath(n.replace(/^\/+/, ''));
      if (rel === '..' || rel.startsWith('../')) {
        throw new InvalidArgumentError('Dockerfile', `"${n}" is outside the build context`, 'give the Dockerfile as a path inside the context, or pass its text');
      }
      let real: string;
      try {
        real = this.follow(rel, n);
      } catch (err) {
        if (err instanceof NotFoundError && n !== names[names.length - 1]) continue;
        if (err instanceof NotFoundError) {
          throw new NotFoundError('file', `${n} in the build context ${this.temp ? '(tar)' : this.root}`, 'name the Dockerfile with -f, relative to the context', { cause: err });
        }
        throw err;
      }
      const st = fs.statSync(path.join(this.root, real));
      if (!st.isFile()) throw new InvalidArgumentError('Dockerfile', `"${n}" is not a regular file`, 'name the Dockerfile with -f, relative to the context');
      if (st.size > DOCKERFILE_MAX) throw new InvalidArgumentError('Dockerfile', `"${n}" is ${st.size} bytes, more than a Dockerfile can be`, 'check the -f path');
      return { name: real, text: await fs.promises.readFile(path.join(this.root, real), 'utf8') };
    }
    throw new Error('unreachable');
  }

  async resolve(source: string): Promise<ContextEntry[]> {
    // Docker: an absolute COPY source is relative to the context root.
    const rel = cleanPath(source.replace(/^\/+/, '') || '.');
    if (rel === '..' || rel.startsWith('../')) {
      throw new InvalidArgumentError('COPY source', `"${source}" is outside the build context`, SOURCE_HINT);
    }
    if (!hasWildcards(rel)) return this.expand(rel, source);
    // fsutil's ResolveWildcards: the components before the first wildcard name a directory that is walked,
    // and the rest is matched against each path below it; a matching directory is taken whole.
    const parts = rel.split('/');
    const first = parts.findIndex((p) => hasWildcards(p));
    const base = parts.slice(0, first).join('/') || '.';
    const pattern = parts.slice(first).join('/');
    goMatch(pattern, '', 'COPY source');
    let baseReal: string;
    try {
      baseReal = this.follow(base, source);
    } catch (err) {
      if (err instanceof NotFoundError) throw this.noMatch(source);
      throw err;
    }
    const matches: string[] = [];
    // `*` and `?` never match a `/`, so a pattern of N components matches N levels down and no deeper;
    // only a class (`[^a]` matches `/` in Go) can, and then the whole tree is walked.
    const depth = pattern.includes('[') ? Infinity : pattern.split('/').length;
    const walk = (dirReal: string, below: string, level: number) => {
      let names: string[];
      try {
        names = fs.readdirSync(path.join(this.root, dirReal)).sort(byBytes);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const name of names) {
        const childReal = join(dirReal, name);
        const childBelow = below ? `${below}/${name}` : name;
        const st = fs.lstatSync(path.join(this.root, childReal));
        const ignored = this.isIgnored(childReal);
        if (goMatch(pattern, childBelow, 'COPY source')) {
          if (!ignored || (st.isDirectory() && this.ignore!.mayIncludeBeneath(childReal))) matches.push(join(base === '.' ? '' : base, childBelow));
          continue;
        }
        if (level < depth && st.isDirectory() && (!ignored || this.ignore!.mayIncludeBeneath(childReal))) walk(childReal, childBelow, level + 1);
      }
    };
    walk(baseReal, '', 1);
    const out: ContextEntry[] = [];
    for (const m of matches) out.push(...(await this.expand(m, source, true)));
    if (!out.length) throw this.noMatch(source);
    return out;
  }

  private noMatch(source: string): BerthError {
    return new NotFoundError('file', `"${source}" in the build context (the pattern matched nothing)`, 'check the pattern and .dockerignore');
  }

  /** One source path (no wildcard) → its entries. `quiet`: an excluded directory without content is skipped, not an error. */
  private async expand(rel: string, source: string, quiet = false): Promise<ContextEntry[]> {
    const real = this.follow(rel, source);
    const abs = path.join(this.root, real);
    const st = fs.statSync(abs);
    const target = rel === '.' ? '' : path.posix.basename(rel);
    const excluded = (p: string) => this.isIgnored(p) && p !== '';
    if (st.isDirectory()) {
      const children: ContextEntry[] = [];
      this.walkDir(real, '', children);
      if ((excluded(rel) || excluded(real)) && !children.length) {
        if (quiet) return [];
        throw this.excludedError(source);
      }
      return [entryOf(real, '', abs, st), ...children];
    }
    if (excluded(rel) || excluded(real)) throw this.excludedError(source);
    if (!st.isFile()) throw new InvalidArgumentError('COPY source', `"${source}" is not a file, directory or symbolic link`, SOURCE_HINT);
    return [entryOf(real, target, abs, st)];
  }

  private excludedError(source: string): BerthError {
    return new NotFoundError('file', `"${source}" in the build context`, 'it is excluded by .dockerignore: remove its pattern, or add a "!" exception');
  }

  /** Everything beneath a directory, lexical order, excluded paths left out; symlinks as links, not followed. */
  private walkDir(dirReal: string, below: string, out: ContextEntry[]): void {
    const names = fs.readdirSync(path.join(this.root, dirReal)).sort(byBytes);
    for (const name of names) {
      const childReal = join(dirReal, name);
      const childBelow = below ? `${below}/${name}` : name;
      const abs = path.join(this.root, childReal);
      const st = fs.lstatSync(abs);
      const ignored = this.isIgnored(childReal);
      if (st.isDirectory()) {
        if (ignored && !this.ignore!.mayIncludeBeneath(childReal)) continue;
        const sub: ContextEntry[] = [];
        this.walkDir(childReal, childBelow, sub);
        // Docker sends an excluded directory only as the parent of something an exception brought back.
        if (ignored && !sub.length) continue;
        out.push(entryOf(childReal, childBelow, abs, st), ...sub);
      } else if (ignored) {
        continue;
      } else if (st.isFile()) {
        out.push(entryOf(childReal, childBelow, abs, st));
      } else if (st.isSymbolicLink()) {
        out.push({ ...entryOf(childReal, childBelow, abs, st), linkname: fs.readlinkSync(abs) });
      }
      // Sockets, fifos and devices in a context directory are skipped, as BuildKit's file sync skips them.
    }
  }

  /**
   * Resolves `rel` inside the context, following symlinks the way the kernel would but scoped: a link
   * whose target is absolute or climbs above the root is refused. Docker clamps such links to the context
   * root instead (continuity's RootPath), which silently copies some other file than the one the link names;
   * the issue asks for a clear error. Returns the real path relative to the root ('' is the root).
   */
  private follow(rel: string, source: string): string {
    let parts = rel === '.' ? [] : rel.split('/');
    const cur: string[] = [];
    let links = 0;
    while (parts.length) {
      const name = parts.shift()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (!cur.length) throw new InvalidArgumentError('COPY source', `"${source}" is outside the build context`, SOURCE_HINT);
        cur.pop();
        continue;
      }
      const here = [...cur, name].join('/');
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(this.root, here));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') {
          throw new NotFoundError('file', `"${source}" in the build context`, 'COPY and ADD sources are paths relative to the context directory', { cause: err });
        }
        throw err;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw new InvalidArgumentError('COPY source', `"${source}" goes through more than ${MAX_LINKS} symbolic links`, 'check for a symlink loop');
        const target = fs.readlinkSync(path.join(this.root, here));
        if (target.startsWith('/')) {
          throw new InvalidArgumentError('COPY source', `"${source}" goes through the symbolic link "${here}" to "${target}", outside the build context`, SOURCE_HINT);
        }
        const resolved = path.posix.normalize([...cur, target].join('/') || '.');
        if (resolved === '..' || resolved.startsWith('../')) {
          throw new InvalidArgumentError('COPY source', `"${source}" goes through the symbolic link "${here}" to "${target}", outside the build context`, SOURCE_HINT);
        }
        parts = [...target.split('/'), ...parts];
        continue;
      }
      if (parts.length && !st.isDirectory()) {
        throw new NotFoundError('file', `"${source}" in the build context`, `"${here}" is not a directory`);
      }
      cur.push(name);
    }
    return cur.join('/');
  }

  async hash(entries: readonly ContextEntry[]): Promise<string> {
    const contents = await mapLimit(entries, HASH_PARALLEL, (e) => (e.type === 'file' ? this.fileDigest(e.hostPath) : Promise.resolve('')));
    const h = createHash('sha256');
    entries.forEach((e, i) => {
      // NUL-separated fields, one record per entry: no path can contain NUL, so records cannot run together.
      h.update(`${e.type}\0${e.target}\0${e.mode.toString(8)}\0${e.size}\0${e.linkname ?? ''}\0${contents[i]}\n`);
    });
    return `sha256:${h.digest('hex')}`;
  }

  private fileDigest(file: string): Promise<string> {
    const st = fs.statSync(file);
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    let d = this.digests.get(key);
    if (!d) {
      d = digestFile(file, st.size);
      this.digests.set(key, d);
      d.catch(() => this.digests.delete(key));
    }
    return d;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.temp) await fs.promises.rm(this.temp, { recursive: true, force: true });
  }
}

function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

/** Go sorts names by bytes; for the UTF-16 strings here code-unit order is the same for every BMP name. */
function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function entryOf(p: string, target: string, hostPath: string, st: fs.Stats): ContextEntry {
  const type = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file';
  return { path: p, target, type, mode: st.mode & 0o7777, size: type === 'file' ? st.size : 0, hostPath };
}

/**
 * Small files are read in one synchronous call: a read stream costs several thread-pool round trips per
 * file, and for 2,000 files of a few KB that made hashing ~1 s instead of ~50 ms.
 */
async function digestFile(file: string, size: number): Promise<string> {
  if (size <= SMALL_FILE) return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const h = createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), h);
  return h.digest('hex');
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ---- unpacking a tar context ------------------------------------------------------------------------------

/**
 * Unpacks a context tar (plain or gzip) into `root`, refusing what a real context never holds. Returns the
 * text when the stream is not a tar at all but a Dockerfile. `root` may hold a partial tree on failure.
 */
async function unpackContext(src: Readable, root: string): Promise<string | undefined> {
  const sniffed = await sniff(src).catch((err: unknown) => {
    throw asContextError(err);
  });
  const writer = new ContextWriter(root);
  const sink = new TarOrText(writer);
  try {
    await pipeline([sniffed.stream, ...sniffed.decoders, sink]);
  } catch (err) {
    throw asContextError(writer.failure ?? err);
  }
  if (sink.text !== undefined) return sink.text;
  writer.finish();
  return undefined;
}

function asContextError(err: unknown): unknown {
  if (err instanceof BerthError || (err as NodeJS.ErrnoException).syscall) return err;
  return new InvalidArgumentError('build context', `the tar stream is corrupt or truncated: ${(err as Error).message}`, TAR_HINT, { cause: err });
}

/**
 * Looks at the first block: a tar header (valid checksum) goes on to the extractor, anything else is
 * gathered as a Dockerfile's text (`docker build - < Dockerfile`).
 */
class TarOrText extends Writable {
  text: string | undefined;
  private head: Buffer[] = [];
  private headLen = 0;
  private extract: tar.Extract | undefined;
  private done: Promise<void> | undefined;

  constructor(private readonly writer: ContextWriter) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.extract) return this.forward(chunk, cb);
    this.head.push(chunk);
    this.headLen += chunk.length;
    if (this.headLen > DOCKERFILE_MAX && this.text !== undefined) return cb(notContext('more than 16 MiB of text'));
    if (this.headLen < 512 || this.text !== undefined) return cb();
    this.decide();
    if (!this.extract) return cb();
    const all = Buffer.concat(this.head);
    this.head = [];
    this.forward(all, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.extract && this.text === undefined) this.decide();
    if (this.extract) {
      if (this.head.length) this.extract.write(Buffer.concat(this.head));
      (this.extract as unknown as Writable).end();
      this.done!.then(() => cb(), cb);
      return;
    }
    const all = Buffer.concat(this.head);
    if (!all.length) return cb(notContext('the stream is empty'));
    if (all.includes(0)) return cb(notContext('it is neither a tar nor a Dockerfile (binary data)'));
    this.text = all.toString('utf8');
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.extract?.destroy(err ?? undefined);
    cb(err);
  }

  private decide(): void {
    const first = Buffer.concat(this.head).subarray(0, 512);
    if (first.length === 512 && isTarHeader(first)) {
      const ex = tar.extract();
      this.extract = ex;
      ex.on('entry', (header, stream, next) => {
        this.writer.entry(header, stream as unknown as EntryData).then(() => next(), (err: Error) => {
          this.writer.failure ??= err;
          next(err);
        });
      });
      this.done = new Promise<void>((resolve, reject) => {
        ex.on('finish', resolve);
        ex.on('error', reject);
      });
      this.done.catch(() => {});
    } else {
      this.text = '';
    }
  }

  private forward(chunk: Buffer, cb: (err?: Error | null) => void): void {
    const ex = this.extract!;
    if (ex.write(chunk)) cb();
    else {
      const onDrain = () => {
        ex.off('error', onError);
        cb();
      };
      const onError = (err: Error) => {
        ex.off('drain', onDrain);
        cb(err);
      };
      ex.once('drain', onDrain);
      ex.once('error', onError);
    }
  }
}

function notContext(why: string): BerthError {
  return new InvalidArgumentError('build context', `stdin is not a tar or a Dockerfile: ${why}`, 'pipe a tar of the context (tar -C DIR -c .) or a Dockerfile');
}

/** A ustar/GNU/v7 header: its checksum (bytes 148-155, octal) is the sum of the block with that field as spaces. */
export function isTarHeader(block: Buffer): boolean {
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ].*$/s, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i]!;
  return sum === parseInt(field, 8);
}

/**
 * Writes entries one at a time. Safety rests on one invariant, as in storage's layer writer: `dirs` holds
 * only paths verified to be real directories (made here, or lstat'ed, never followed); every entry is
 * written under one of them with O_NOFOLLOW|O_EXCL, so no entry can be written through a symlink an
 * earlier entry made, and no name can leave `root`.
 */
class ContextWriter {
  failure: Error | undefined;
  private readonly dirs = new Set<string>(['']);
  private readonly dirModes = new Map<string, number>();

  constructor(private readonly root: string) {}

  async entry(header: tar.Header, data: EntryData): Promise<void> {
    const rel = this.name(header.name, header.name);
    const mode = (header.mode ?? 0o644) & 0o7777;
    try {
      switch (header.type) {
        case 'file':
        case 'contiguous-file':
          return await this.file(rel, header.name, mode, data);
        case 'directory':
          data.resume();
          return this.dir(rel, header.name, mode);
        case 'symlink':
          data.resume();
          return this.symlink(rel, header.name, header.linkname ?? '');
        case 'link':
          data.resume();
          return this.hardlink(rel, header.name, header.linkname ?? '');
        default:
          data.resume();
          throw hostile(header.name, `is a ${header.type ?? 'special file'}: a build context holds only files, directories and links`);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') throw hostile(header.name, 'has a name component longer than 255 bytes');
      throw err;
    }
  }

  /** Entry names: relative, no NUL, never climbing out; an absolute name is refused, not re-rooted. */
  private name(name: string, entry: string): string {
    if (name.includes('\0')) throw hostile(entry, 'has a NUL byte in its name');
    if (name.startsWith('/')) throw hostile(entry, 'has an absolute path');
    if (name.length > PATH_MAX) throw hostile(entry.slice(0, 64) + '...', `has a name longer than ${PATH_MAX} bytes`);
    const rel = path.posix.normalize(name || '.').replace(/\/+$/, '');
    if (rel === '..' || rel.startsWith('../') || name.split('/').includes('..')) throw hostile(entry, 'climbs out of the context with ".."');
    return rel === '.' ? '' : rel;
  }

  /** Makes (or verifies) every parent of `rel` as a real directory. */
  private parents(rel: string, entry: string): void {
    for (const a of ancestors(rel)) {
      if (this.dirs.has(a)) continue;
      const abs = path.join(this.root, a);
      const st = lstatOrUndefined(abs);
      if (!st) fs.mkdirSync(abs, { mode: 0o755 });
      else if (st.isSymbolicLink()) throw hostile(entry, `would be written through the symbolic link "${a}"`);
      else if (!st.isDirectory()) throw hostile(entry, `is beneath "${a}", which is not a directory`);
      this.dirs.add(a);
    }
  }

  /** What is already at `rel`: a later entry of the same kind replaces a file (tar's rule), nothing else. */
  private clear(rel: string, entry: string, kind: 'file' | 'directory' | 'link'): boolean {
    if (!rel) {
      if (kind === 'directory') return true;
      throw hostile(entry, 'names the context root but is not a directory');
    }
    const abs = path.join(this.root, rel);
    const st = lstatOrUndefined(abs);
    if (!st) return false;
    if (st.isSymbolicLink()) throw hostile(entry, `would be written through the symbolic link "${rel}" an earlier entry made`);
    if (st.isDirectory()) {
      if (kind === 'directory') return true;
      throw hostile(entry, `would replace the directory "${rel}"`);
    }
    if (kind === 'directory') throw hostile(entry, `would replace the file "${rel}" with a directory`);
    fs.unlinkSync(abs);
    return false;
  }

  private async file(rel: string, entry: string, mode: number, data: EntryData): Promise<void> {
    this.parents(rel, entry);
    this.clear(rel, entry, 'file');
    const abs = path.join(this.root, rel);
    const fd = fs.openSync(abs, OPEN_NEW, 0o600);
    try {
      for await (const chunk of data) fs.writeSync(fd, chunk as Buffer);
      fs.fchmodSync(fd, mode);
    } finally {
      fs.closeSync(fd);
    }
  }

  private dir(rel: string, entry: string, mode: number): void {
    this.parents(rel, entry);
    if (!this.clear(rel, entry, 'directory')) fs.mkdirSync(path.join(this.root, rel), { mode: 0o755 });
    this.dirs.add(rel);
    // Applied at the end: a read-only directory made now would refuse the entries that follow.
    this.dirModes.set(rel, mode);
  }

  /** A symlink is made as a link and never followed here; where it points is checked when COPY uses it. */
  private symlink(rel: string, entry: string, target: string): void {
    if (!target) throw hostile(entry, 'is a symbolic link with an empty target');
    this.parents(rel, entry);
    this.clear(rel, entry, 'link');
    fs.symlinkSync(target, path.join(this.root, rel));
  }

  private hardlink(rel: string, entry: string, linkname: string): void {
    if (!linkname) throw hostile(entry, 'is a hard link with an empty target');
    let target: string;
    try {
      target = this.name(linkname, entry);
    } catch {
      throw hostile(entry, `is a hard link to "${linkname}", outside the context`);
    }
    if (!target) throw hostile(entry, 'is a hard link to the context root');
    for (const a of ancestors(target)) {
      if (!this.dirs.has(a)) throw hostile(entry, `is a hard link to "${linkname}", which no earlier entry made`);
    }
    const st = lstatOrUndefined(path.join(this.root, target));
    if (!st?.isFile()) throw hostile(entry, `is a hard link to "${linkname}", which is not a file an earlier entry made`);
    this.parents(rel, entry);
    this.clear(rel, entry, 'link');
    fs.linkSync(path.join(this.root, target), path.join(this.root, rel));
  }

  finish(): void {
    for (const [rel, mode] of this.dirModes) fs.chmodSync(path.join(this.root, rel), mode);
  }
}

/** tar-stream's entry stream (a streamx Readable): iterated and drained like a Node stream. */
type EntryData = AsyncIterable<unknown> & { resume(): unknown };

function hostile(entry: string, why: string): BerthError {
  return new InvalidArgumentError('build context', `tar entry "${entry}" ${why}`, TAR_HINT);
}

function lstatOrUndefined(abs: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
