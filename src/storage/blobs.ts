import { createHash } from 'node:crypto';
import { constants, createReadStream, existsSync, readFileSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, CorruptError, NotFoundError } from '../errors.js';
import { digestHex, isDigest, type Digest } from '../ids.js';
import { failpoint } from '../util/failpoint.js';
import { ensureDir, ownedTempName, readdirIfExists, removeDeadTemps, writeJsonAtomic } from '../util/fs.js';
import type { BlobInfo, BlobStore, IngestOptions } from './index.js';

type Source = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

const READ_CHUNK = 1 << 20;
const HINT = 'pull the image again; if it keeps failing, the registry or the file is damaged';

/** Rebuilds blobs that are not kept as files: uncompressed layer tars, from their layer's tar-split. */
export interface BlobRebuilder {
  has(layer: Digest): Promise<boolean>;
  open(layer: Digest, blob: BlobInfo): Readable;
}

/** A blob kept as a recipe rather than bytes: `<root>/virtual/<hex>`. */
interface VirtualRecord extends BlobInfo {
  layer: Digest;
}

/**
 * Blobs at `<root>/sha256/<hex>`, written as temp file → hash check → fsync → rename (containerd's ingest).
 * An uncompressed layer blob may instead be virtual: its bytes are not kept, its layer rebuilds them.
 */
export function openBlobStore(root: string, rebuilder?: BlobRebuilder): BlobStore {
  const dir = path.join(root, 'sha256');
  const vdir = path.join(root, 'virtual');
  const realPath = (digest: Digest) => path.join(dir, digestHex(digest));
  const virtualPath = (digest: Digest) => path.join(vdir, digestHex(digest));
  const virtual = (digest: Digest): VirtualRecord | undefined => {
    try {
      return JSON.parse(readFileSync(virtualPath(digest), 'utf8')) as VirtualRecord;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };

  async function ingest(src: Source, expected: Partial<BlobInfo> = {}, opts: IngestOptions = {}): Promise<BlobInfo> {
    await ensureDir(dir);
    // Each ingest has its own temp file, so two ingests of one blob both succeed: the last rename wins
    // and both renames put the same bytes in place.
    const tmp = path.join(dir, ownedTempName('.tmp-ingest'));
    const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      let writing = true;
      void opts.stopWriting?.then(() => { writing = false; });
      const info = await copyHashing(src, fh, expected, () => writing);
      const layer = rebuilder && (await opts.rebuiltBy?.(info));
      if (!layer && !writing) throw new CorruptError(`${info.digest} was neither kept nor rebuilt by a layer`, HINT);
      if (layer) {
        // Holds at most the first bytes (until the stream proved to be a tar), never synced.
        await ensureDir(vdir);
        await writeJsonAtomic(virtualPath(info.digest), { ...info, layer } satisfies VirtualRecord);
        await fh.close();
        await fsp.rm(tmp, { force: true });
        return info;
      }
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, realPath(info.digest));
      return info;
    } catch (err) {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  function open(digest: Digest): Readable {
    if (existsSync(realPath(digest))) return createReadStream(realPath(digest), { highWaterMark: READ_CHUNK }) as Readable;
    const v = virtual(digest);
    if (!v || !rebuilder) throw new NotFoundError('blob', digest);
    return rebuilder.open(v.layer, { digest: v.digest, size: v.size });
  }

  return {
    // A virtual blob's path is its record's: enough for its age, and `open` reads either kind.
    path: (digest) => (existsSync(realPath(digest)) || !existsSync(virtualPath(digest)) ? realPath(digest) : virtualPath(digest)),
    async has(digest) {
      if (existsSync(realPath(digest))) return true;
      const v = virtual(digest);
      return !!v && !!rebuilder && rebuilder.has(v.layer);
    },
    ingest,
    put: (data, expected) => ingest([typeof data === 'string' ? Buffer.from(data) : data], expected),
    async read(digest) {
      try {
        if (existsSync(realPath(digest)) || !virtual(digest)) return await fsp.readFile(realPath(digest));
      } catch (err) {
        throw notFoundOr(err, digest);
      }
      const chunks: Buffer[] = [];
      for await (const c of open(digest)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    open,
    async stat(digest) {
      try {
        return { digest, size: (await fsp.stat(realPath(digest))).size };
      } catch (err) {
        const v = (err as NodeJS.ErrnoException).code === 'ENOENT' ? virtual(digest) : undefined;
        if (v) return { digest, size: v.size };
        throw notFoundOr(err, digest);
      }
    },
    async delete(digest) {
      await fsp.rm(realPath(digest), { force: true });
      await fsp.rm(virtualPath(digest), { force: true });
    },
    async reclaim() {
      await removeDeadTemps(dir);
      await removeDeadTemps(vdir);
    },
    async list() {
      const names = new Set([...(await readdirIfExists(dir)), ...(await readdirIfExists(vdir))]);
      return [...names].map((hex) => `sha256:${hex}`).filter(isDigest);
    },
  };
}

async function copyHashing(src: Source, fh: fsp.FileHandle, expected: Partial<BlobInfo>, writing: () => boolean): Promise<BlobInfo> {
  const hash = createHash('sha256');
  const want = expected.digest ?? 'blob';
  let size = 0;
  try {
    for await (const chunk of src) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      hash.update(buf);
      size += buf.length;
      if (expected.size !== undefined && size > expected.size) {
        throw new CorruptError(`${want} is larger than the expected ${expected.size} bytes`, HINT);
      }
      if (writing()) {
        await writeFully(fh, buf);
        failpoint('storage.ingest.mid-blob');
      }
    }
  } catch (err) {
    // Write failures (disk full) carry an errno; anything else broke the incoming stream.
    if (err instanceof BerthError || (err as NodeJS.ErrnoException).syscall) throw err;
    throw new CorruptError(`${want}: the stream broke after ${size} bytes: ${(err as Error).message}`, HINT, { cause: err });
  }
  const digest = `sha256:${hash.digest('hex')}` as Digest;
  if (expected.size !== undefined && size !== expected.size) {
    throw new CorruptError(`${want} is truncated: expected ${expected.size} bytes, got ${size}`, HINT);
  }
  if (expected.digest !== undefined && digest !== expected.digest) {
    throw new CorruptError(`blob digest mismatch: expected ${expected.digest}, got ${digest}`, HINT);
  }
  return { digest, size };
}

/** FileHandle.write may write less than asked (a full disk returns short before failing). */
async function writeFully(fh: fsp.FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

function notFoundOr(err: unknown, digest: Digest): unknown {
  return (err as NodeJS.ErrnoException).code === 'ENOENT' ? new NotFoundError('blob', digest, undefined, { cause: err }) : err;
}
