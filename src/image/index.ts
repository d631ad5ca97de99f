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
import type { ImagesApi } from '../types.js';
import type { Digest, ImageId } from '../ids.js';
import type { StoreLayout } from '../paths.js';
import type { Storage } from '../storage/index.js';
import { DefaultImageStore } from './store.js';

export type { OciImageConfig, OciContainerConfig, OciHistory } from './oci.js';
export { parseReference, type ImageReference } from './reference.js';
export { DEFAULT_IMAGE } from './busybox.js';

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

export interface ImageStore extends ImagesApi {
  /** Removes what a killed command left (temp files, leases, a lock); cheap when there is nothing. Once per store object. */
  repair(): Promise<void>;
  /**
   * Finds an image by `name[:tag]` (a name without a registry is tried as `localhost/NAME` first),
   * `name@sha256:…` (manifest digest), or a full or unique short image ID, with or without `sha256:`.
   * InvalidArgumentError for a malformed reference, NotFoundError('image', ref) for an unknown one.
   */
  resolve(ref: string): Promise<ImageRecord>;
}

export interface ImageStoreOptions {
  /**
   * IDs of the running, paused or restarting containers made from `image`. The image layer cannot see
   * container states (they live above it), so the engine passes this in; without it no container counts
   * as running. Docker refuses to delete such an image even with force (a hard conflict).
   */
  runningContainers?(image: ImageId): Promise<string[]>;
}

export function openImageStore(layout: StoreLayout, storage: Storage, opts: ImageStoreOptions = {}): ImageStore {
  return new DefaultImageStore(layout, storage, opts);
}
