/**
 * Images: records and tags over the storage layer's blobs and layers.
 *
 * Life of an image (containerd's images service shape):
 *   load/import/ensureDefault: blobs ingested and layers unpacked under a lease (invisible, shielded
 *     from collection) → every digest checked → image record and tags written last, under the images lock
 *   tag/untag: one file per tag; an image with no tag is dangling
 *   remove/prune: record deleted → blobs and layers no image, snapshot or live lease uses are collected
 * A crash leaves no record and no tag; its blobs and layers are collected by the next prune.
 */
import type { Readable, Writable } from 'node:stream';
import type { ArchiveFormat, RemovedImage } from '../types.js';
import type { Digest, ImageId } from '../ids.js';
import type { StoreLayout } from '../paths.js';
import type { Storage } from '../storage/index.js';
import { DefaultImageStore } from './store.js';

export type { OciImageConfig, OciContainerConfig, OciHistory } from './oci.js';
export { parseReference, type ImageReference } from './reference.js';
export { DEFAULT_IMAGE, isDefaultImageRef } from './busybox.js';
export { checkImageConfig } from './config-check.js';

/** What the container layer needs to make a container from an image. */
export interface ImageRecord {
  /** sha256 of the config blob, as Docker's image ID */
  id: ImageId;
  manifestDigest: Digest;
  config: import('./oci.js').OciImageConfig;
  /** diffIDs, bottom layer first */
  layers: Digest[];
  repoTags: string[];
}

/** An image in a listing: its record's fields that need no blob read, and the tags the filters let through. */
export interface ImageListing {
  id: ImageId;
  /** none for a dangling image */
  tags: string[];
  /** repository digests (name@sha256:…); none while images come only from archives */
  digests: string[];
  /** RFC 3339, the config's */
  created: string;
  /** unpacked bytes of all layers */
  size: number;
}

/** Everything the store knows of one image: its record, tags, and config. */
export interface ImageDetails {
  id: ImageId;
  manifestDigest: Digest;
  /** every tag naming the image, with when it was set (RFC 3339) */
  tags: { name: string; tagged: string }[];
  digests: string[];
  created: string;
  size: number;
  config: import('./oci.js').OciImageConfig;
  /** bottom layer first, with its unpacked size */
  layers: { diffId: Digest; size: number }[];
  /** the config's history, oldest first; empty when the config has none */
  history: import('./oci.js').OciHistory[];
  /** the image a build step or commit made it from (Docker's Parent) */
  parent?: ImageId;
}

/**
 * The image store. It returns its own records; api/ shapes them as Docker shows them (`images`,
 * `image inspect`, `history`).
 */
export interface ImageStore {
  /** Removes what a killed command left (temp files, leases, a lock); cheap when there is nothing. Once per store object. */
  repair(): Promise<void>;
  /**
   * Finds an image by `name[:tag]` (a name without a registry is tried as `localhost/NAME` first),
   * `name@sha256:…` (manifest digest), or a full or unique short image ID, with or without `sha256:`.
   * InvalidArgumentError for a malformed reference, NotFoundError('image', ref) for an unknown one.
   */
  resolve(ref: string): Promise<ImageRecord>;
  /** Newest first; `filters` as `docker images` takes them (dangling=, reference=). */
  list(opts?: { all?: boolean; filters?: string[] }): Promise<ImageListing[]>;
  inspect(ref: string): Promise<ImageDetails>;
  /** `target` names `source` from now on (one file per tag). */
  tag(source: string, target: string): Promise<void>;
  /** `noPrune`: keep the untagged parents Docker's rmi deletes with the image (`--no-prune`) */
  remove(ref: string, opts?: { force?: boolean; noPrune?: boolean }): Promise<RemovedImage[]>;
  /** `filters`: until=, label=, label!= (util/prune-filter.ts) */
  prune(opts?: { all?: boolean; filters?: string[] }): Promise<{ deleted: string[]; spaceReclaimed: number }>;
  /** A docker-archive or OCI layout (tar file, directory, or tar stream); aborting `signal` undoes it. */
  load(input: string | Readable, opts?: { signal?: AbortSignal }): Promise<{ loaded: string[] }>;
  save(refs: string[], output: string | Writable, opts?: { format?: ArchiveFormat }): Promise<void>;
  /** A root filesystem tarball with Dockerfile-style `changes`; returns the image ID. */
  import(input: string | Readable, opts?: { reference?: string; changes?: string[]; message?: string }): Promise<string>;
  /**
   * `docker commit`: `layer` (an uncompressed OCI layer tar) on top of the `parent` image's layers, with
   * `containerConfig` under the Dockerfile-style `changes` and one history entry; returns the image ID.
   */
  commit(req: ImageCommitRequest): Promise<string>;
  /**
   * A build step's image: the layers of `parent` (none: `FROM scratch`) plus `layer` when the step made
   * one, with `config` as the builder wrote it (its rootfs is filled in here). Untagged: the builder tags
   * the last step's image. Returns the image ID.
   */
  addBuilt(req: BuiltImageRequest): Promise<ImageId>;
  /** Read-only overlay of the image; returns the mount point. */
  mount(ref: string): Promise<string>;
  unmount(ref: string): Promise<void>;
  /** Builds the default image from the host's busybox-static, tagged localhost/busybox:latest. */
  ensureDefault(opts?: { rebuild?: boolean }): Promise<string>;
  /**
   * A registry pull: `work` puts the image's verified blobs and layers in through `writer` (under a lease,
   * invisible), and returns what to record; the record, its tag and RepoDigest are written last, under
   * the images lock. All or nothing, as `load`: on failure what it stored and no image uses is deleted.
   */
  ingestPulled(work: (writer: PullWriter) => Promise<PulledImage>): Promise<{ id: ImageId; changed: boolean }>;
  /** Pushing `ref`: its config, and the manifest to send with its blobs (a RepoDigest's, when it has one). */
  pushable(ref: string, repository: string): Promise<PushableImage>;
  /** After a push (Docker does this): the image gets `name@digest` as a RepoDigest. */
  addRepoDigest(ref: string, repoDigest: { name: string; digest: Digest; manifest: Digest; manifestMediaType: string }): Promise<void>;
  /** Streams a stored blob (an uncompressed layer's may be rebuilt from its layer); its size. */
  openBlob(digest: Digest): Promise<{ size: number; open: () => Readable }>;
}

/** What a pull writes through: each call checks digest and size before anything becomes visible. */
export interface PullWriter {
  /** The blob is stored (and kept for this pull). */
  hasBlob(digest: Digest): Promise<boolean>;
  /** The layer is unpacked (and kept for this pull). */
  hasLayer(diffId: Digest): Promise<boolean>;
  /** A manifest, index or config; a mismatch with `expected` is a CorruptError and nothing is kept. */
  putBlob(data: Buffer, expected: { digest: Digest; size: number }): Promise<void>;
  readBlob(digest: Digest): Promise<Buffer>;
  /**
   * A layer blob streamed in and unpacked in the same pass (gzip, zstd or plain); its digest and size are
   * checked against `expected` and the unpacked tar against `diffId`. When the layer is already unpacked
   * only the blob is stored.
   */
  putLayer(src: AsyncIterable<Uint8Array>, expected: { digest: Digest; size: number }, diffId: Digest, mediaType: string): Promise<void>;
}

export interface PulledImage {
  /** `name:tag` to point at the image; none for a pull by digest */
  tag?: string;
  /** repository name with registry: `docker.io/library/busybox` */
  name: string;
  /** what the registry knows it by: the index's digest for a multi-platform image */
  digest: Digest;
  manifestDigest: Digest;
  manifestMediaType: string;
  configDigest: Digest;
  layers: { diffId: Digest; blob: Digest; blobSize: number; mediaType: string }[];
  /** extra blobs to keep with the RepoDigest (the index) */
  extraBlobs: Digest[];
}

export interface PushableImage {
  id: ImageId;
  manifestDigest: Digest;
  manifestMediaType: string;
  manifest: Buffer;
  /** config first, then layers, each as the manifest names it */
  blobs: { digest: Digest; size: number; mediaType: string }[];
  /** repository names (same registry or not) the image's RepoDigests came from, for cross-repository mounts */
  sources: string[];
}

export interface ImageCommitRequest {
  /** image ID */
  parent: string;
  layer: Readable;
  containerConfig: import('./oci.js').OciContainerConfig;
  changes?: string[];
  /** history comment (-m) */
  message?: string;
  /** -a */
  author?: string;
  /** history created_by: the container's command, as Docker writes it */
  createdBy: string;
  /** name:tag to point at the new image */
  reference?: string;
}

export interface BuiltImageRequest {
  /** image ID; none for `FROM scratch` */
  parent?: ImageId;
  /** an uncompressed OCI layer tar */
  layer?: Readable;
  config: import('./oci.js').OciImageConfig;
}

export interface ImageStoreOptions {
  /**
   * IDs of the running, paused or restarting containers made from `image`. The image layer cannot see
   * container states (they live above it), so the engine passes this in; without it no container counts
   * as running. Docker refuses to delete such an image even with force (a hard conflict).
   */
  runningContainers?(image: ImageId): Promise<string[]>;
  /** registries a short name may have been pulled from, in order (the engine config's); default docker.io */
  unqualifiedSearch?: readonly string[];
}

export function openImageStore(layout: StoreLayout, storage: Storage, opts: ImageStoreOptions = {}): ImageStore {
  return new DefaultImageStore(layout, storage, opts);
}
