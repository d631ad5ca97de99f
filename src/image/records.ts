import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { digestHex, type Digest, type ImageId } from '../ids.js';
import type { StoreLayout } from '../paths.js';
import { ensureDir, readJsonIfExists, readdirIfExists, writeJsonAtomic } from '../util/fs.js';
import { clearStaleLock, withLock } from '../util/lock.js';

/** One layer of a stored image: the unpacked layer (diffID) and the blob it came from. */
export interface StoredLayer {
  diffId: Digest;
  blob: Digest;
  mediaType: string;
  blobSize: number;
  /** unpacked bytes */
  size: number;
}

/**
 * Where an image was pulled from or pushed to: Docker's RepoDigest `name@digest`. `digest` is what the
 * registry knows the image by (an index's, for a multi-platform pull); `manifest` is the image manifest
 * stored for it, kept with every blob it names (`blobs`) so that a push sends the same bytes back and
 * gets the same digest.
 */
export interface RepoDigest {
  /** repository name with its registry, e.g. `docker.io/library/busybox` */
  name: string;
  digest: Digest;
  manifest: Digest;
  manifestMediaType: string;
  /** every blob this entry keeps: index (if any), manifest, layer blobs (the config is the image's own) */
  blobs: Digest[];
}

/** `images/<id-hex>.json`. Written last, after every blob and layer it names exists. */
export interface StoredImage {
  id: ImageId;
  manifestDigest: Digest;
  manifestMediaType: string;
  configDigest: Digest;
  layers: StoredLayer[];
  /** config.created, kept here so listing needs no blob reads */
  created: string;
  /** unpacked bytes of all layers */
  size: number;
  added: string;
  /** absent for images that never met a registry */
  repoDigests?: RepoDigest[];
  /**
   * The image this one was made from by a build step or a commit (Docker's image parent). An untagged
   * image that is another's parent is an intermediate: hidden from `images` without -a and kept by
   * `image prune` while its child lives, as Docker's classic builder's images are.
   */
  parent?: ImageId;
}

/** How many images name each image as their parent. */
export function childCounts(images: readonly StoredImage[]): Map<ImageId, number> {
  const out = new Map<ImageId, number>();
  for (const i of images) if (i.parent) out.set(i.parent, (out.get(i.parent) ?? 0) + 1);
  return out;
}

/** `name@digest`, as Docker shows RepoDigests. */
export function repoDigestRefs(img: StoredImage): string[] {
  return (img.repoDigests ?? []).map((r) => `${r.name}@${r.digest}`);
}

/** `images/tags/<encoded name:tag>.json` */
export interface TagEntry {
  name: string;
  id: ImageId;
  tagged: string;
}

/**
 * Image records and tags on disk: one file per image and one per tag (no shared JSON file), each
 * written atomically. Every change to the tag set, and every garbage collection that could race it,
 * runs under the one `images` lock.
 */
export class ImageRecords {
  readonly dir: string;
  private readonly tagsDir: string;
  private readonly lockFile: string;

  constructor(layout: StoreLayout) {
    this.dir = layout.images;
    this.tagsDir = path.join(layout.images, 'tags');
    this.lockFile = path.join(layout.locks, 'images.lock');
  }

  /** Removes the images lock if the process holding it has exited (it was killed mid-command). */
  clearStaleLock(): Promise<void> {
    return clearStaleLock(this.lockFile);
  }

  withLock<T>(fn: () => Promise<T>): Promise<T> {
    // Generous: a collection may wait on a large layer being deleted by another command.
    return withLock(this.lockFile, fn, 120_000);
  }

  async readImage(id: ImageId): Promise<StoredImage | undefined> {
    return readJsonIfExists<StoredImage>(this.imageFile(id));
  }

  async listImages(): Promise<StoredImage[]> {
    const names = (await readdirIfExists(this.dir)).filter((n) => /^[0-9a-f]{64}\.json$/.test(n));
    const recs = await Promise.all(names.map((n) => readJsonIfExists<StoredImage>(path.join(this.dir, n))));
    return recs.filter((r): r is StoredImage => r !== undefined);
  }

  async writeImage(rec: StoredImage): Promise<void> {
    await ensureDir(this.dir);
    await writeJsonAtomic(this.imageFile(rec.id), rec);
  }

  async deleteImage(id: ImageId): Promise<void> {
    await fsp.rm(this.imageFile(id), { force: true });
  }

  async listTags(): Promise<TagEntry[]> {
    const names = (await readdirIfExists(this.tagsDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    const tags = await Promise.all(names.map((n) => readJsonIfExists<TagEntry>(path.join(this.tagsDir, n))));
    return tags.filter((t): t is TagEntry => t !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }

  async getTag(name: string): Promise<TagEntry | undefined> {
    return readJsonIfExists<TagEntry>(this.tagFile(name));
  }

  async setTag(name: string, id: ImageId): Promise<void> {
    await ensureDir(this.tagsDir);
    await writeJsonAtomic(this.tagFile(name), { name, id, tagged: new Date().toISOString() } satisfies TagEntry);
  }

  async deleteTag(name: string): Promise<void> {
    await fsp.rm(this.tagFile(name), { force: true });
  }

  private imageFile(id: ImageId): string {
    return path.join(this.dir, `${digestHex(id)}.json`);
  }

  /** Readable for usual names; a hash when encoding would pass the 255-byte file name limit. */
  private tagFile(name: string): string {
    const enc = encodeURIComponent(name);
    const base = enc.length <= 200 ? enc : `h-${createHash('sha256').update(name).digest('hex')}`;
    return path.join(this.tagsDir, `${base}.json`);
  }
}
