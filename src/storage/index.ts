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
import type { IdMapping } from '../userns/index.js';
import { openBlobStore } from './blobs.js';
import { ingestLayer } from './ingest.js';
import { openLayerStore } from './layers.js';
import { openSnapshotter } from './snapshots.js';
import { chooseDriver, hostDriverFacts, type StorageDriverName, type StorageDriverSetting } from './driver.js';
import { isRootless } from '../rootless/index.js';

/** Plain mount helpers, for the layers that mount things of their own (volumes). */
export { isMounted, unmount as unmountTarget } from './mounts.js';
export { packTree, type Change, type ChangeKind } from './changes.js';
export { overlayXattrs } from './overlay-xattr.js';
export { type LayerShifter } from './shifted.js';
export { FuseOverlayfsMissingError, fuseOverlayfsVersion, parseStorageDriver, type StorageDriverName, type StorageDriverSetting } from './driver.js';
import type { Change } from './changes.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface IngestOptions {
  /**
   * Called once the blob passed its checks: a layer that can rebuild it (see `LayerStore.rebuild`)
   * makes the blob virtual, so its bytes are not kept.
   */
  rebuiltBy?(blob: BlobInfo): Promise<Digest | undefined>;
  /**
   * Once this settles the bytes are only hashed and counted, not written: the caller expects a layer
   * to rebuild them (`rebuiltBy` must then name one, or the ingest fails).
   */
  stopWriting?: Promise<void>;
}

export interface BlobStore {
  path(digest: Digest): string;
  has(digest: Digest): Promise<boolean>;
  /** Streams into the store. With `expected`, a digest or size mismatch is a CorruptError and nothing is kept. */
  ingest(src: Readable | AsyncIterable<Uint8Array>, expected?: Partial<BlobInfo>, opts?: IngestOptions): Promise<BlobInfo>;
  put(data: string | Uint8Array, expected?: Partial<BlobInfo>): Promise<BlobInfo>;
  read(digest: Digest): Promise<Buffer>;
  /** A virtual blob streams its rebuild, which errors with CorruptError if it does not match. */
  open(digest: Digest): Readable;
  stat(digest: Digest): Promise<BlobInfo>;
  delete(digest: Digest): Promise<void>;
  list(): Promise<Digest[]>;
  /** Removes temp files of ingests whose process has exited (killed mid-write). */
  reclaim(): Promise<void>;
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

export interface UnpackOptions {
  /** A mismatch is a CorruptError and nothing is kept. */
  expectedDiffId?: Digest;
  /**
   * The verified sha256 of the stream itself (a stored blob's digest), or a promise of it that settles
   * once the stream has been read. An uncompressed layer's diffID is that digest: it is not hashed again.
   */
  srcDigest?: Digest | PromiseLike<Digest>;
  /** Runs once the diffID is known, before the layer becomes visible: a lease must name it by then. */
  beforeCommit?(diffId: Digest): Promise<void>;
  /** For an uncompressed tar: keep a tar-split record, so that the blob can be rebuilt rather than kept. */
  keepSplit?: boolean;
  /** With `keepSplit`: called once the first entry of the stream unpacked, so it is a tar, not some other blob. */
  onTarEntry?(): void;
  /** The stream's expected size in bytes: a big layer unpacks on a worker thread (unpack-thread.ts). */
  sizeHint?: number;
}

export interface LayerStore {
  /**
   * Unpacks a layer tar stream (compression detected from magic bytes) into a new diff dir.
   * Idempotent: an already-present diffID is not unpacked again. Refuses unsafe entries
   * (../, absolute paths, links out of the layer, writes through symlinks) with CorruptError.
   */
  unpack(src: Readable, opts?: UnpackOptions): Promise<LayerInfo>;
  has(diffId: Digest): Promise<boolean>;
  /** True when the layer can rebuild its uncompressed blob (it was unpacked with `keepSplit`). */
  hasSplit(diffId: Digest): Promise<boolean>;
  /** Streams the layer's original uncompressed blob; a size or digest mismatch errors it with CorruptError. */
  rebuild(diffId: Digest, blob: BlobInfo): Readable;
  get(diffId: Digest): Promise<LayerInfo>;
  list(): Promise<LayerInfo[]>;
  remove(diffId: Digest): Promise<void>;
  /** Deletes layers still flagged incomplete by a crashed unpack. */
  repair(): Promise<void>;
  /** The cheap part of `repair`, for every command: temp folders whose unpack's process has exited. */
  reclaim(): Promise<void>;
}

/** Who a snapshot belongs to: a container's root filesystem, or a read-only `image mount`. */
export type SnapshotOwner = 'container' | 'image-mount';

export interface SnapshotInfo {
  key: string;
  owner: SnapshotOwner;
  /** diffIDs, bottom layer first */
  layers: Digest[];
  /** the image this snapshot was made from, so image removal can see it is in use */
  image: string;
  readOnly: boolean;
  /** where the root filesystem appears when mounted */
  mountpoint: string;
  mounted: boolean;
  /** a user-namespaced container's maps: its lowers are the layers shifted into them, its upper owned by the mapped root */
  idmap?: IdMapping;
  /** how it is mounted; absent in snapshots made before fuse-overlayfs existed: overlay */
  driver?: StorageDriverName;
}

export interface Snapshotter {
  /** Makes upper/work (none when readOnly) and mounts the overlay at `mountpoint`. */
  prepare(key: string, parent: { image: string; layers: Digest[] }, opts: { owner: SnapshotOwner; readOnly?: boolean; idmap?: IdMapping }): Promise<SnapshotInfo>;
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
  /** `docker diff`: the writable layer against the snapshot's layers; `exclude`d paths (mount points) left out. */
  changes(key: string, exclude: readonly string[]): Promise<Change[]>;
  /** The writable layer as an OCI layer tar (whiteouts as `.wh.` entries), `exclude`d paths left out. */
  packChanges(key: string, exclude: readonly string[]): Promise<Readable>;
}

export interface IngestedLayer {
  blob: BlobInfo;
  /** absent when the blob is not a layer tar, or unpacking it failed (unpack it from the blob to see why) */
  layer?: LayerInfo;
}

export interface Storage {
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly snapshots: Snapshotter;
  /**
   * `blobs.ingest`, and in the same pass over `src` a speculative `layers.unpack`: for archives, where
   * whether a blob is a layer, and its diffID, are known only after it has gone by. A layer is stored
   * under the diffID it hashes to, so it is right for whoever asks for that diffID; `beforeCommit`
   * lets a lease name it before it becomes visible, since no image may ever refer to it.
   */
  ingestLayer(src: AsyncIterable<Uint8Array>, expected?: Partial<BlobInfo>, opts?: { beforeCommit?(diffId: Digest): Promise<void> }): Promise<IngestedLayer>;
  /** Removes what a killed command left mid-write (temp files and folders of dead processes); needs no lock. */
  reclaim(): Promise<void>;
  /** The driver new snapshots get: the setting, with `auto` resolved (probed once per kernel, rootless). */
  driver(): Promise<StorageDriverName>;
}

export interface StorageOptions {
  /** default `auto` */
  driver?: StorageDriverSetting;
}

export function openStorage(layout: StoreLayout, opts: StorageOptions = {}): Storage {
  let chosen: Promise<StorageDriverName> | undefined;
  const driver = () => (chosen ??= chooseDriver(opts.driver ?? 'auto', hostDriverFacts(layout.root, isRootless())).catch((err: unknown) => {
    chosen = undefined;
    throw err;
  }));
  const layers = openLayerStore(layout.layers);
  const blobs = openBlobStore(layout.blobs, { has: (d) => layers.hasSplit(d), open: (d, blob) => layers.rebuild(d, blob) });
  return {
    blobs,
    layers,
    snapshots: openSnapshotter(layout, { driver }),
    driver,
    ingestLayer: (src, expected, opts) => ingestLayer(blobs, layers, src, expected, opts),
    async reclaim() {
      await blobs.reclaim();
      await layers.reclaim();
    },
  };
}
