import { createHash } from 'node:crypto';
import fs, { constants, existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import type tar from 'tar-stream';
import { CorruptError } from '../errors.js';
import type { Digest } from '../ids.js';
import type { BlobInfo } from './index.js';
import type { SplitSink } from './tarreader.js';
import { entryPath, isWithin, parseWhiteout } from './tarpath.js';

/**
 * tar-split (containers/storage): an uncompressed layer blob is not kept; its exact framing is. The record
 * is a list of segments, whose concatenation is the original tar: raw bytes (headers, PAX/GNU records,
 * padding, end blocks) and references to regular files of the layer with their sizes.
 *
 * INVARIANT: files of a diff dir never change after unpack (they are read-only overlay lower layers),
 * so a file referenced here still holds the entry's content when the blob is rebuilt. A rebuild checks
 * the digest anyway and fails with CorruptError rather than produce different bytes.
 */
export const SPLIT_FILE = 'tar-split.gz';
/** Where content of files a later entry replaced is moved, since the blob still needs it. */
export const STASH_DIR = 'split-stash';

/** BTS1 named a replaced file's stash path in its segment; BTS2 finds it by the segment's ordinal. */
const MAGIC_V1 = Buffer.from('BTS1');
const MAGIC = Buffer.from('BTS2');
const RAW = 0x52;
const FILE = 0x46;
/** A run of zero bytes, stored as its length: end blocks, record padding, zero-filled bodies. */
const ZERO = 0x5a;
const READ_CHUNK = 1 << 20;
/** The record goes to disk in gzip members of about this much: memory stays bounded on any layer. */
const FLUSH_AT = 1 << 20;
const ZEROES = Buffer.alloc(READ_CHUNK);

/**
 * Records the segments of one tar while `LayerWriter` unpacks it into `<layer>/diff`. The record is
 * written to `<layer>/tar-split.gz` as it grows (gzip members, which gunzip reads as one stream), so
 * what a layer carries that is not a file (a whiteout's body, bytes after the end-of-archive marker)
 * costs disk at gzip's rate, never memory. A file segment names `diff/<entry>`; when a later entry
 * replaces that file, its content moves to `split-stash/f<ordinal>`, which a rebuild looks at first.
 */
export class SplitRecorder implements SplitSink {
  private raws: Buffer[] = [];
  private rawBytes = 0;
  private zeroRun = 0;
  private encoded: Buffer[] = [];
  private encodedBytes = 0;
  private fd: number | undefined;
  private files = 0;
  /** Files in the diff dir that segments refer to: entry path → the segment's ordinal. */
  private readonly live = new Map<string, number>();
  private current: { rel: string; ordinal: number } | undefined;

  constructor(private readonly layerDir: string) {}

  raw(bytes: Buffer): void {
    for (let off = 0; off < bytes.length; off += READ_CHUNK) {
      const piece = bytes.subarray(off, off + READ_CHUNK);
      if (piece.equals(ZEROES.subarray(0, piece.length))) {
        this.flushRaw();
        this.zeroRun += piece.length;
        continue;
      }
      this.flushZero();
      this.raws.push(Buffer.from(piece));
      this.rawBytes += piece.length;
      if (this.rawBytes >= FLUSH_AT) this.flushRaw();
    }
  }

  keepsContent(header: tar.Header): boolean {
    this.current = undefined;
    if (header.type !== 'file' && header.type !== 'contiguous-file') return false;
    let rel: string;
    try {
      rel = entryPath(header.name);
    } catch {
      return false; // the writer refuses this entry, and the unpack fails
    }
    if (!rel || parseWhiteout(rel)) return false;
    this.flushRaw();
    this.flushZero();
    const name = Buffer.from(`diff/${rel}`, 'utf8');
    const head = Buffer.alloc(9);
    head[0] = FILE;
    head.writeUInt16LE(name.length, 1);
    head.writeUIntLE(header.size ?? 0, 3, 6);
    this.push(head, name);
    this.current = { rel, ordinal: this.files++ };
    return true;
  }

  entryDone(): void {
    if (this.current) this.live.set(this.current.rel, this.current.ordinal);
    this.current = undefined;
  }

  /** Called before `rel` (and all below it) is deleted: keeps the content the record still refers to. */
  evict(rel: string): void {
    for (const [p, ordinal] of this.live) {
      if (!isWithin(p, rel)) continue;
      fs.mkdirSync(path.join(this.layerDir, STASH_DIR), { recursive: true, mode: 0o700 });
      fs.renameSync(path.join(this.layerDir, 'diff', p), path.join(this.layerDir, stashName(ordinal)));
      this.live.delete(p);
    }
  }

  /** Writes what is left and closes the record. */
  finish(): void {
    this.flushRaw();
    this.flushZero();
    this.writeEncoded();
    this.close();
  }

  /** Closes the file on a failed unpack (the caller deletes the folder). */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private flushRaw(): void {
    if (!this.raws.length) return;
    const head = Buffer.alloc(5);
    head[0] = RAW;
    head.writeUInt32LE(this.rawBytes, 1);
    this.push(head, ...this.raws);
    this.raws = [];
    this.rawBytes = 0;
  }

  private flushZero(): void {
    if (!this.zeroRun) return;
    const head = Buffer.alloc(7);
    head[0] = ZERO;
    head.writeUIntLE(this.zeroRun, 1, 6);
    this.push(head);
    this.zeroRun = 0;
  }

  private push(...bytes: Buffer[]): void {
    for (const b of bytes) {
      this.encoded.push(b);
      this.encodedBytes += b.length;
    }
    if (this.encodedBytes >= FLUSH_AT) this.writeEncoded();
  }

  private writeEncoded(): void {
    if (this.fd === undefined) {
      this.fd = fs.openSync(path.join(this.layerDir, SPLIT_FILE), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      writeAllSync(this.fd, gzipSync(MAGIC));
    }
    if (!this.encoded.length) return;
    // Level 1: headers compress ~10× at any level; the time goes to the bodies a hostile layer adds.
    writeAllSync(this.fd, gzipSync(Buffer.concat(this.encoded), { level: 1 }));
    this.encoded = [];
    this.encodedBytes = 0;
  }
}

function stashName(ordinal: number): string {
  return `${STASH_DIR}/f${ordinal}`;
}

function writeAllSync(fd: number, buf: Buffer): void {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/**
 * Rebuilds the original blob of layer `diffId` from `<layerDir>/tar-split.gz` and its files, checking
 * size and digest as it goes: a mismatch errors the stream with a CorruptError naming the layer.
 */
export function rebuildBlob(layerDir: string, diffId: Digest, expected: BlobInfo): Readable {
  return Readable.from(rebuild(layerDir, diffId, expected), { objectMode: false });
}

async function* rebuild(layerDir: string, diffId: Digest, expected: BlobInfo): AsyncGenerator<Buffer> {
  const fail = (why: string) => new CorruptError(`layer ${diffId} cannot rebuild blob ${expected.digest}: ${why}`,
    'its files changed after unpack; remove the image and load or pull it again');
  const hash = createHash('sha256');
  let total = 0;
  const emit = (b: Buffer) => {
    hash.update(b);
    total += b.length;
    if (total > expected.size) throw fail(`it grows past ${expected.size} bytes`);
    return b;
  };
  const record = recordReader(fs.createReadStream(path.join(layerDir, SPLIT_FILE)).pipe(createGunzip()));
  try {
    const magic = await record.take(4);
    const v2 = magic.equals(MAGIC);
    if (!v2 && !magic.equals(MAGIC_V1)) throw fail('the tar-split record is not in a known format');
    for (let ordinal = 0; ; ) {
      const kind = await record.take(1, true);
      if (!kind.length) break;
      if (kind[0] === RAW) {
        for (let len = (await record.take(4)).readUInt32LE(0); len > 0; ) {
          const piece = await record.take(Math.min(len, READ_CHUNK));
          len -= piece.length;
          yield emit(piece);
        }
      } else if (kind[0] === ZERO) {
        for (let len = (await record.take(6)).readUIntLE(0, 6); len > 0; len -= READ_CHUNK) {
          yield emit(ZEROES.subarray(0, Math.min(len, READ_CHUNK)));
        }
      } else if (kind[0] === FILE) {
        const head = await record.take(8);
        const size = head.readUIntLE(2, 6);
        let name = (await record.take(head.readUInt16LE(0))).toString('utf8');
        if (v2 && existsSync(path.join(layerDir, stashName(ordinal)))) name = stashName(ordinal);
        ordinal++;
        for await (const chunk of readExactly(path.join(layerDir, name), size, fail)) yield emit(chunk);
      } else {
        throw fail('the tar-split record is damaged');
      }
    }
  } catch (err) {
    if (err instanceof CorruptError) throw err;
    throw fail(`the tar-split record cannot be read: ${(err as Error).message}`);
  } finally {
    record.close();
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if (total !== expected.size || digest !== expected.digest) throw fail(`got ${digest} (${total} bytes)`);
}

/** Exact-length reads from a stream, holding at most one chunk beyond what was asked. */
function recordReader(src: Readable): { take(n: number, orEnd?: boolean): Promise<Buffer>; close(): void } {
  const it = src[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  return {
    async take(n, orEnd = false) {
      while (buf.length < n) {
        const r = await it.next();
        if (r.done) {
          if (orEnd && buf.length === 0) return buf;
          throw new Error('the record ends in the middle of a segment');
        }
        buf = buf.length ? Buffer.concat([buf, r.value as Buffer]) : (r.value as Buffer);
      }
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    },
    close() {
      src.destroy();
    },
  };
}

async function* readExactly(file: string, size: number, fail: (why: string) => Error): AsyncGenerator<Buffer> {
  if (size === 0) return;
  const fh = await fs.promises.open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: Error) => {
    throw fail(`${file}: ${err.message}`);
  });
  try {
    if ((await fh.stat()).size !== size) throw fail(`${file} is no longer ${size} bytes`);
    for (let left = size; left > 0; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, size - left);
      if (bytesRead === 0) throw fail(`${file} is shorter than ${size} bytes`);
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
