/**
 * Storage: content-addressed blobs, unpacked layers keyed by diffID, and overlay snapshots.
 *
 * Life of the objects (containerd's snapshotter shape):
 *   blob:     ingest (temp file, hashed while streamed) → verify digest/size → rename into blobs/sha256/<hex>
 *   layer:    unpack (flagged incomplete) → diff dir complete → flag cleared; shared by every image with that diffID
 *   snapshot: prepare(key, layers) → upper/work made, overlay mounted at merged → unmount → remove
 * A crash at any point leaves either nothing visible or an object flagged incomplete that `repair` removes.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../ids.js';
import type { StoreLayout } from '../paths.js';
import { openBlobStore } from './blobs.js';
import { openLayerStore } from './layers.js';
import { openSnapshotter } from './snapshots.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface BlobStore {
  path(digest: Digest): string;
  has(digest: Digest): Promise<boolean>;
  /** Streams into the store. With `expected`, a digest or size mismatch is a CorruptError and nothing is kept. */
  ingest(src: Readable | AsyncIterable<Uint8Array>, expected?: Partial<BlobInfo>): Promise<BlobInfo>;
  put(data: string | Uint8Array, expected?: Partial<BlobInfo>): Promise<BlobInfo>;
  read(digest: Digest): Promise<Buffer>;
  open(digest: Digest): Readable;
  stat(digest: Digest): Promise<BlobInfo>;
  delete(digest: Digest): Promise<void>;
  list(): Promise<Digest[]>;
}

export type Compression = 'none' | 'gzip' | 'zstd';

export interface LayerInfo {
  /** sha256 of the uncompressed tar */
  diffId: Digest;
  /** bytes of unpacked content (sum of regular file sizes) */
  size: number;
  /** folder holding the layer's files in overlay form (whiteouts as 0:0 char devices, opaque xattrs) */
  diffPath: string;
  created: string;
  /** set by `unpack` only: what could not be reproduced exactly (xattrs without setfattr, say) */
  warnings?: string[];
}

export interface LayerStore {
  /**
   * Unpacks a layer tar stream (compression detected from magic bytes) into a new diff dir.
   * Idempotent: an already-present diffID is not unpacked again. Refuses unsafe entries
   * (../, absolute paths, links out of the layer, writes through symlinks) with CorruptError.
   * With `expectedDiffId`, a mismatch is a CorruptError and nothing is kept.
   */
  unpack(src: Readable, opts?: { expectedDiffId?: Digest }): Promise<LayerInfo>;
  has(diffId: Digest): Promise<boolean>;
  get(diffId: Digest): Promise<LayerInfo>;
  list(): Promise<LayerInfo[]>;
  remove(diffId: Digest): Promise<void>;
  /** Deletes layers still flagged incomplete by a crashed unpack. */
  repair(): Promise<void>;
}

export interface SnapshotInfo {
  key: string;
  /** diffIDs, bottom layer first */
  layers: Digest[];
  /** the image this snapshot was made from, so image removal can see it is in use */
  image: string;
  readOnly: boolean;
  /** where the root filesystem appears when mounted */
  mountpoint: string;
  mounted: boolean;
}

export interface Snapshotter {
  /** Makes upper/work (none when readOnly) and mounts the overlay at `mountpoint`. */
  prepare(key: string, parent: { image: string; layers: Digest[] }, opts?: { readOnly?: boolean }): Promise<SnapshotInfo>;
  /** Idempotent: mounts again after a reboot or an unmount. */
  mount(key: string): Promise<string>;
  /** Idempotent: "not mounted" is success. */
  unmount(key: string): Promise<void>;
  /** Unmounts and deletes the snapshot. "Already gone" is success. */
  remove(key: string): Promise<void>;
  get(key: string): Promise<SnapshotInfo | undefined>;
  list(): Promise<SnapshotInfo[]>;
  /** Disk used by the writable layer, in bytes. */
  usage(key: string): Promise<number>;
  /** Removes snapshots flagged incomplete by a crashed prepare. */
  repair(): Promise<void>;
}

export interface Storage {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly snapshots: Snapshotter;
}

export function openStorage(layout: StoreLayout): Storage {
  return {
    blobs: openBlobStore(layout.blobs),
    layers: openLayerStore(layout.layers),
    snapshots: openSnapshotter(layout),
  };
}
