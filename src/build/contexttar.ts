import fs, { constants } from 'node:fs';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError, InvalidArgumentError } from '../errors.js';
import { sniff } from '../storage/compression.js';
import { ancestors } from '../storage/tarpath.js';

const TAR_HINT = 'the context tar is malformed or hostile: make it with "tar -C DIR -c ." from a directory you trust';
/** Linux's PATH_MAX: a longer name cannot be created anyway, and says the tar is not a real context. */
const PATH_MAX = 4096;
/** A Dockerfile on stdin (`berth build - < Dockerfile`) is text; anything this big is not one. */
export const DOCKERFILE_MAX = 16 << 20;
const OPEN_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Unpacks a context tar (plain or gzip) into `root`, refusing what a real context never holds. Returns the
 * text when the stream is not a tar at all but a Dockerfile. `root` may hold a partial tree on failure.
 */
export async function unpackContext(src: Readable, root: string): Promise<string | undefined> {
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
    // Docker also reads bzip2 and xz contexts; say so rather than "binary data".
    if (all.subarray(0, 3).toString('latin1') === 'BZh') return cb(notContext('it is bzip2-compressed; Berth reads plain or gzip tars'));
    if (all.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return cb(notContext('it is xz-compressed; Berth reads plain or gzip tars'));
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
