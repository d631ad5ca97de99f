import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import type tar from 'tar-stream';
import { CorruptError } from '../errors.js';

const BLOCK = 512;
const HINT = 'the layer is malformed or hostile; pull or build the image from a trusted source';
/** PAX and GNU long-name records are names and xattrs: anything bigger is not a real archive. */
const META_LIMIT = 16 << 20;

/** Every byte of the archive goes to exactly one of these, in order: that is what makes it rebuildable. */
export interface SplitSink {
  /** Bytes kept verbatim: headers, PAX/GNU records, padding, end blocks, anything after them. */
  raw(bytes: Buffer): void;
  /** Whether the content of this entry is kept as a file in the diff dir (then it is not passed to `raw`). */
  keepsContent(header: tar.Header): boolean;
  /** The entry was handled (its file, if kept, is complete). */
  entryDone(header: tar.Header): void;
}

type EntryHandler = (header: tar.Header, data: PassThrough, next: (err?: Error | null) => void) => void;

const TYPES: Record<string, tar.Header['type']> = {
  '0': 'file', '\0': 'file', '1': 'link', '2': 'symlink', '3': 'character-device', '4': 'block-device',
  '5': 'directory', '6': 'fifo', '7': 'contiguous-file',
};

/**
 * A tar reader that, unlike tar-stream, shows every raw block: tar-split's idea, so an uncompressed
 * layer can be rebuilt byte for byte from its unpacked files. Speaks ustar, PAX ('x', 'g') and GNU long
 * names ('L', 'K'). Hands each entry to `onEntry` as tar-stream's `entry` event does (header, content
 * stream, next), one at a time; `onTarEntry` runs once the first entry was handled.
 */
export class SplitExtract extends Writable {
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private globalPax: Record<string, string> = {};
  private pax: Record<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;

  constructor(private readonly sink: SplitSink, private readonly onEntry: EntryHandler, private onTarEntry?: () => void) {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.consume(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if ((this.pending.length && !this.ended) || this.resume) {
      const err = new CorruptError('layer tar is truncated: unexpected end of data', HINT);
      this.data?.destroy(err);
      cb(err);
      return;
    }
    if (this.pending.length) this.sink.raw(this.pending);
    cb();
  }

  /** Torn down mid-entry (the source failed or ended early): the entry's reader must see it too, or it waits forever. */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.data?.destroy(err ?? new CorruptError('layer tar is truncated: the stream stopped inside an entry', HINT));
    this.data = undefined;
    cb(err);
  }

  /** Bytes of the current chunk not yet consumed, plus what was left from the previous one. */
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** An entry's content and metadata records may span chunks: this resumes them. */
  private resume: (() => Promise<boolean>) | undefined;
  /** The content stream of the entry being read, so that a truncated archive can fail it. */
  private data: PassThrough | undefined;

  private async consume(chunk: Buffer): Promise<void> {
    this.buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pos = 0;
    this.pending = Buffer.alloc(0);
    if (this.resume && !(await this.resume())) return this.keepRest();
    while (this.buf.length - this.pos >= BLOCK || (this.ended && this.pos < this.buf.length)) {
      if (this.ended) {
        this.sink.raw(this.take(this.buf.length - this.pos));
        break;
      }
      if (!(await this.header(this.take(BLOCK)))) return this.keepRest();
    }
    this.keepRest();
  }

  private keepRest(): void {
    this.pending = this.pos < this.buf.length ? Buffer.from(this.buf.subarray(this.pos)) : Buffer.alloc(0);
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Handles one header block; false when its content runs past this chunk (`resume` continues it). */
  private async header(block: Buffer): Promise<boolean> {
    this.sink.raw(block);
    if (block.every((b) => b === 0)) {
      // End of archive: what follows (the second zero block, padding to a record) is kept verbatim.
      this.ended = true;
      return true;
    }
    checkSum(block);
    const flag = String.fromCharCode(block[156]!);
    const size = num(block, 124, 12);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > META_LIMIT) throw new CorruptError(`layer tar has a ${size}-byte extended header`, HINT);
      return this.readMeta(flag, size);
    }
    const header = this.entryHeader(block, flag, size);
    return this.emitEntry(header);
  }

  private readMeta(flag: string, size: number): boolean {
    const parts: Buffer[] = [];
    let left = size + padding(size);
    const step = (): boolean => {
      const n = Math.min(left, this.buf.length - this.pos);
      const bytes = this.take(n);
      this.sink.raw(bytes);
      parts.push(Buffer.from(bytes));
      left -= n;
      if (left > 0) return false;
      this.resume = undefined;
      this.applyMeta(flag, Buffer.concat(parts).subarray(0, size));
      return true;
    };
    this.resume = async () => step();
    return step();
  }

  private applyMeta(flag: string, data: Buffer): void {
    if (flag === 'L') this.longName = cString(data);
    else if (flag === 'K') this.longLink = cString(data);
    else if (flag === 'g') {
      this.globalPax = { ...this.globalPax, ...parsePax(data) };
      // Global records add up over the whole archive: bound their sum, not only each one.
      const total = Object.entries(this.globalPax).reduce((n, [k, v]) => n + k.length + v.length, 0);
      if (total > META_LIMIT) throw new CorruptError(`layer tar has more than ${META_LIMIT >> 20} MiB of global PAX headers`, HINT);
    }
    else this.pax = { ...this.pax, ...parsePax(data) };
  }

  private entryHeader(block: Buffer, flag: string, size: number): tar.Header {
    const pax = { ...this.globalPax, ...this.pax };
    const magic = block.subarray(257, 263).toString('latin1');
    const prefix = magic === 'ustar\0' ? cString(block.subarray(345, 500)) : '';
    const rawName = cString(block.subarray(0, 100));
    const name = pax.path ?? this.longName ?? (prefix ? `${prefix}/${rawName}` : rawName);
    const linkname = pax.linkpath ?? this.longLink ?? cString(block.subarray(157, 257));
    this.pax = this.longName = this.longLink = undefined;
    const header: tar.Header & { pax?: Record<string, string> } = {
      name,
      linkname,
      type: TYPES[flag] ?? (`unknown-${flag}` as tar.Header['type']),
      size: pax.size !== undefined ? Number(pax.size) : size,
      mode: num(block, 100, 8),
      uid: num(block, 108, 8),
      gid: num(block, 116, 8),
      mtime: new Date(num(block, 136, 12) * 1000),
      uname: cString(block.subarray(265, 297)),
      gname: cString(block.subarray(297, 329)),
      devmajor: num(block, 329, 8),
      devminor: num(block, 337, 8),
    };
    if (Object.keys(pax).length) header.pax = pax;
    return header;
  }

  /** Hands the entry over and streams its content; resolves once the handler called `next`. */
  private async emitEntry(header: tar.Header): Promise<boolean> {
    const size = header.size ?? 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new CorruptError(`layer entry "${header.name}" has an invalid size`, HINT);
    const data = new PassThrough({ highWaterMark: 1 << 20 });
    this.data = data;
    let settle!: (err?: Error | null) => void;
    const handled = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    handled.catch(() => {});
    const keep = this.sink.keepsContent(header);
    this.onEntry(header, data, settle);
    let left = size;
    let pad = padding(size);
    const step = async (): Promise<boolean> => {
      while (left > 0 && this.pos < this.buf.length) {
        const bytes = this.take(Math.min(left, this.buf.length - this.pos));
        left -= bytes.length;
        if (!keep) this.sink.raw(bytes);
        if (!data.write(bytes)) await Promise.race([once(data, 'drain'), handled]);
      }
      if (left > 0) return false;
      const p = Math.min(pad, this.buf.length - this.pos);
      if (p) this.sink.raw(this.take(p));
      pad -= p;
      if (pad > 0) return false;
      this.resume = undefined;
      this.data = undefined;
      data.end();
      await handled;
      this.sink.entryDone(header);
      this.onTarEntry?.();
      this.onTarEntry = undefined;
      return true;
    };
    this.resume = step;
    return step();
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString('utf8');
}

/** Octal, or GNU base-256 (high bit set) for values that do not fit. */
function num(block: Buffer, off: number, len: number): number {
  const field = block.subarray(off, off + len);
  if (field[0]! & 0x80) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/[\0 ].*$/s, '').trim();
  return text ? parseInt(text, 8) : 0;
}

function checkSum(block: Buffer): void {
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += block[i]!;
    signed += (block[i]! << 24) >> 24;
  }
  const want = num(block, 148, 8);
  if (want !== unsigned && want !== signed) throw new CorruptError('layer tar has a header with a bad checksum (not a tar, or damaged)', HINT);
}

/** `<len> <key>=<value>\n` records. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    const len = parseInt(data.subarray(off, space).toString('latin1'), 10);
    if (space === -1 || !Number.isSafeInteger(len) || len <= 0 || off + len > data.length) break;
    const rec = data.subarray(space + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}
