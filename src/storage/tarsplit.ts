import { createHash } from 'node:crypto';
import fs, { constants } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
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

const MAGIC = Buffer.from('BTS1');
const RAW = 0x52;
const FILE = 0x46;
const READ_CHUNK = 1 << 20;

interface FileSegment {
  /** relative to the layer folder: `diff/<entry>` or `split-stash/<n>` */
  path: string;
  size: number;
}

/** Records the segments of one tar while `LayerWriter` unpacks it into `<layer>/diff`. */
export class SplitRecorder implements SplitSink {
  private readonly parts: (Buffer | FileSegment)[] = [];
  private raws: Buffer[] = [];
  /** Files in the diff dir that segments refer to, by entry path. */
  private readonly live = new Map<string, FileSegment>();
  private current: { rel: string; seg: FileSegment } | undefined;
  private stashed = 0;

  constructor(private readonly layerDir: string) {}

  raw(bytes: Buffer): void {
    if (bytes.length) this.raws.push(Buffer.from(bytes));
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
    const seg = { path: `diff/${rel}`, size: header.size ?? 0 };
    this.parts.push(seg);
    this.current = { rel, seg };
    return true;
  }

  entryDone(): void {
    if (this.current) this.live.set(this.current.rel, this.current.seg);
    this.current = undefined;
  }

  /** Called before `rel` (and all below it) is deleted: keeps the content the record still refers to. */
  evict(rel: string): void {
    for (const [p, seg] of this.live) {
      if (!isWithin(p, rel)) continue;
      const name = `${STASH_DIR}/${this.stashed++}`;
      fs.mkdirSync(path.join(this.layerDir, STASH_DIR), { recursive: true, mode: 0o700 });
      fs.renameSync(path.join(this.layerDir, seg.path), path.join(this.layerDir, name));
      seg.path = name;
      this.live.delete(p);
    }
  }

  /** The record, compressed: headers compress ~10×. */
  async encode(): Promise<Buffer> {
    this.flushRaw();
    const out: Buffer[] = [MAGIC];
    for (const part of this.parts) {
      if (Buffer.isBuffer(part)) {
        const head = Buffer.alloc(5);
        head[0] = RAW;
        head.writeUInt32LE(part.length, 1);
        out.push(head, part);
      } else {
        const name = Buffer.from(part.path, 'utf8');
        const head = Buffer.alloc(9);
        head[0] = FILE;
        head.writeUInt16LE(name.length, 1);
        head.writeUIntLE(part.size, 3, 6);
        out.push(head, name);
      }
    }
    return promisify(gzip)(Buffer.concat(out), { level: 1 });
  }

  private flushRaw(): void {
    if (!this.raws.length) return;
    this.parts.push(Buffer.concat(this.raws));
    this.raws = [];
  }
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
  const record = await promisify(gunzip)(await fs.promises.readFile(path.join(layerDir, SPLIT_FILE)));
  if (!record.subarray(0, 4).equals(MAGIC)) throw fail('the tar-split record is not in a known format');
  const hash = createHash('sha256');
  let total = 0;
  const emit = (b: Buffer) => {
    hash.update(b);
    total += b.length;
    if (total > expected.size) throw fail(`it grows past ${expected.size} bytes`);
    return b;
  };
  for (let off = 4; off < record.length; ) {
    if (record[off] === RAW) {
      const len = record.readUInt32LE(off + 1);
      yield emit(record.subarray(off + 5, off + 5 + len));
      off += 5 + len;
    } else if (record[off] === FILE) {
      const nameLen = record.readUInt16LE(off + 1);
      const size = record.readUIntLE(off + 3, 6);
      const name = record.subarray(off + 9, off + 9 + nameLen).toString('utf8');
      off += 9 + nameLen;
      for await (const chunk of readExactly(path.join(layerDir, name), size, fail)) yield emit(chunk);
    } else {
      throw fail('the tar-split record is damaged');
    }
  }
  const digest = `sha256:${hash.digest('hex')}`;
  if (total !== expected.size || digest !== expected.digest) throw fail(`got ${digest} (${total} bytes)`);
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
