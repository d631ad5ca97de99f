import { PassThrough, type Writable } from 'node:stream';
import type { Digest } from '../ids.js';
import type { BlobInfo, BlobStore, IngestedLayer, LayerInfo, LayerStore } from './index.js';

/** Unpacking lags behind the blob write by at most this much; beyond it the archive read waits. */
const FEED_BUFFER = 4 << 20;

/**
 * One pass over a blob that may be a layer: each chunk goes to the blob store and to the unpacker at
 * once, so the bytes are read, and hashed, once. The unpack is speculative: it fails harmlessly on a
 * blob that is not a layer tar, and for a plain tar it takes the blob's digest as the diffID instead of
 * hashing the bytes again. The layer is committed only after the blob passed its checks.
 */
export async function ingestLayer(
  blobs: BlobStore, layers: LayerStore, src: AsyncIterable<Uint8Array>, expected: Partial<BlobInfo> = {},
  opts: { beforeCommit?(diffId: Digest): Promise<void> } = {},
): Promise<IngestedLayer> {
  const feed = new PassThrough({ highWaterMark: FEED_BUFFER });
  let unpacking = true;
  const blob = blobs.ingest(tee(src, feed, () => unpacking), expected);
  // The unpack may have given up before the blob settles: its rejection is the caller's to see, not an unhandled one.
  const digest = blob.then((b) => b.digest);
  digest.catch(() => {});
  const layer: Promise<LayerInfo | undefined> = layers.unpack(feed, {
    srcDigest: digest,
    async beforeCommit(diffId) {
      await blob;
      await opts.beforeCommit?.(diffId);
    },
  }).catch(() => {
    // Not a layer, or a bad one: the caller unpacks from the stored blob, and that reports the error.
    unpacking = false;
    feed.destroy();
    return undefined;
  });
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
