import { PassThrough, type Writable } from 'node:stream';
import { CorruptError } from '../errors.js';
import type { Digest } from '../ids.js';
import type { BlobInfo, BlobStore, IngestedLayer, LayerInfo, LayerStore } from './index.js';

/** Unpacking lags behind the blob write by at most this much; beyond it the archive read waits. */
const FEED_BUFFER = 4 << 20;

/**
 * One pass over a blob that may be a layer: each chunk goes to the blob store and to the unpacker at
 * once, so the bytes are read, and hashed, once. The unpack is speculative: it fails harmlessly on a
 * blob that is not a layer tar, and for a plain tar it takes the blob's digest as the diffID instead of
 * hashing the bytes again. The layer is committed only after the blob passed its checks.
 *
 * A plain tar is written once, not twice: after its first entry unpacked, its bytes go only to the
 * layer's files and tar-split record, and the blob becomes virtual (rebuilt from the layer on `open`).
 * The price: a plain tar that turns bad after its first entry fails the ingest with the unpack's error,
 * since its bytes were not kept to be looked at again.
 */
export async function ingestLayer(
  blobs: BlobStore, layers: LayerStore, src: AsyncIterable<Uint8Array>, expected: Partial<BlobInfo> = {},
  opts: { beforeCommit?(diffId: Digest): Promise<void> } = {},
): Promise<IngestedLayer> {
  const feed = new PassThrough({ highWaterMark: FEED_BUFFER });
  // The unpack's pipeline sees the feed's errors while it reads; once it has stopped (an abort reached it
  // first), a destroy with an error must not become an unhandled 'error' event that kills the process.
  feed.on('error', () => {});
  let unpacking = true;
  // Settles once the blob passed its checks, before it is kept: the layer may commit then, and only a
  // committed layer can stand in for the blob's bytes.
  let verified!: (digest: Digest) => void;
  let failed!: (err: unknown) => void;
  const digest = new Promise<Digest>((resolve, reject) => {
    verified = resolve;
    failed = reject;
  });
  // The unpack may have given up before the blob settles: its rejection is the caller's to see, not an unhandled one.
  digest.catch(() => {});
  // Once the first entry unpacked, the bytes are no longer written: the layer's tar-split keeps them.
  let isTar!: () => void;
  const tarSeen = new Promise<void>((resolve) => { isTar = resolve; });
  let tarSeenFlag = false;
  let unpackError: unknown;
  const layer: Promise<LayerInfo | undefined> = layers.unpack(feed, {
    srcDigest: digest,
    keepSplit: true,
    sizeHint: expected.size,
    onTarEntry() {
      tarSeenFlag = true;
      isTar();
    },
    async beforeCommit(diffId) {
      await digest;
      await opts.beforeCommit?.(diffId);
    },
  }).catch((err: unknown) => {
    // Not a layer: the blob is kept. A bad layer tar whose bytes were no longer written fails the ingest
    // with the unpack's error (see `rebuiltBy`); one that is compressed is kept, and unpacking it again
    // from the store reports the error.
    unpackError = err;
    unpacking = false;
    feed.destroy();
    return undefined;
  });
  const blob = blobs.ingest(tee(src, feed, () => unpacking), expected, {
    stopWriting: tarSeen,
    async rebuiltBy(info) {
      verified(info.digest);
      const l = await layer;
      if (l && l.diffId === info.digest && (await layers.hasSplit(l.diffId))) return l.diffId;
      if (tarSeenFlag) throw unpackError ?? new CorruptError(`layer tar ${info.digest} could not be unpacked`, 'the layer is malformed; pull or build the image again');
      return undefined;
    },
  });
  blob.catch(failed);
  try {
    const info = await blob;
    return { blob: info, layer: await layer };
  } catch (err) {
    feed.destroy();
    await layer;
    throw err;
  }
}

/** Yields `src` unchanged, writing each chunk to `feed` first while `live()`; honours `feed`'s backpressure. */
async function* tee(src: AsyncIterable<Uint8Array>, feed: Writable, live: () => boolean): AsyncGenerator<Uint8Array> {
  let ended = false;
  try {
    for await (const chunk of src) {
      if (live() && !feed.destroyed && !feed.write(chunk)) await drained(feed);
      yield chunk;
    }
    ended = true;
    if (live()) feed.end();
  } finally {
    // The blob ingest stopped early (a size check, a disk error): a partial layer must not pass for whole.
    if (!ended) feed.destroy(new Error('the blob stream stopped before its end'));
  }
}

function drained(feed: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      feed.off('drain', done);
      feed.off('close', done);
      resolve();
    };
    feed.on('drain', done);
    feed.on('close', done);
  });
}
