import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, CorruptError, NotFoundError } from '../errors.js';
import { digestHex, isDigest, type Digest } from '../ids.js';
import { ensureDir, readdirIfExists } from '../util/fs.js';
import type { BlobInfo, BlobStore } from './index.js';

type Source = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

const READ_CHUNK = 1 << 20;
const HINT = 'pull the image again; if it keeps failing, the registry or the file is damaged';

/** Blobs at `<root>/sha256/<hex>`, written as temp file → hash check → fsync → rename (containerd's ingest). */
export function openBlobStore(root: string): BlobStore {
  const dir = path.join(root, 'sha256');
  const blobPath = (digest: Digest) => path.join(dir, digestHex(digest));

  async function ingest(src: Source, expected: Partial<BlobInfo> = {}): Promise<BlobInfo> {
    await ensureDir(dir);
    // Each ingest has its own temp file, so two ingests of one blob both succeed: the last rename wins
    // and both renames put the same bytes in place.
    const tmp = path.join(dir, `.tmp-ingest-${randomBytes(8).toString('hex')}`);
    const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      const info = await copyHashing(src, fh, expected);
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, blobPath(info.digest));
      return info;
    } catch (err) {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  return {
    path: blobPath,
    has: async (digest) => existsSync(blobPath(digest)),
    ingest,
    put: (data, expected) => ingest([typeof data === 'string' ? Buffer.from(data) : data], expected),
    async read(digest) {
      try {
        return await fsp.readFile(blobPath(digest));
      } catch (err) {
        throw notFoundOr(err, digest);
      }
    },
    open(digest) {
      if (!existsSync(blobPath(digest))) throw new NotFoundError('blob', digest);
      return createReadStream(blobPath(digest), { highWaterMark: READ_CHUNK }) as Readable;
    },
    async stat(digest) {
      try {
        return { digest, size: (await fsp.stat(blobPath(digest))).size };
      } catch (err) {
        throw notFoundOr(err, digest);
      }
    },
    async delete(digest) {
      await fsp.rm(blobPath(digest), { force: true });
    },
    async list() {
      return (await readdirIfExists(dir)).map((hex) => `sha256:${hex}`).filter(isDigest);
    },
  };
}

async function copyHashing(src: Source, fh: fsp.FileHandle, expected: Partial<BlobInfo>): Promise<BlobInfo> {
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
      await writeFully(fh, buf);
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
