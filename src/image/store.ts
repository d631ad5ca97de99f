import path from 'node:path';
import { parsePruneFilter, prunable } from '../util/prune-filter.js';
import type { Readable, Writable } from 'node:stream';
import type { ArchiveFormat, RemovedImage } from '../types.js';
import { BadStateError, CorruptError, InvalidArgumentError, NotFoundError, RuntimeError } from '../errors.js';
import { digestHex, shortId, type Digest, type ImageId } from '../ids.js';
import type { StoreLayout } from '../paths.js';
import { EventLog } from '../events.js';
import type { Storage } from '../storage/index.js';
import { removeDeadTemps, removeStaleTemps } from '../util/fs.js';
import { DEFAULT_IMAGE, buildBusyboxLayer, busyboxConfig } from './busybox.js';
import { addRepoDigest, commitImages, prepareWithNewManifest, putBlob, unpackLayer, type IngestContext, type PreparedImage } from './commit.js';
import { Lease, collectGarbage, reclaimDeadLeases, type Collected } from './gc.js';
import type { BuiltImageRequest, ImageCommitRequest, ImageDetails, ImageListing, ImageRecord, ImageStore, ImageStoreOptions, PullWriter, PulledImage, PushableImage } from './index.js';
import { applyChanges } from './changes.js';
import { checkImageConfig } from './config-check.js';
import { readArchive } from './load.js';
import { MediaType, type OciImageConfig, type OciManifest } from './oci.js';
import { ImageRecords, childCounts, repoDigestRefs, type StoredImage, type StoredLayer, type TagEntry } from './records.js';
import { candidateTags, idPrefix, parseReference, parseTagTarget } from './reference.js';
import { importRootfs } from './rootfs.js';
import { writeArchive, type SaveItem } from './save.js';
import { parseListFilters, selectImages } from './filters.js';

/** What `deleteWithParents` checks, kept current as a prune deletes. */
interface Keepers {
  tagged: Set<ImageId>;
  children: Map<ImageId, number>;
  /** images containers were made from */
  used: Set<string>;
  gone: Set<ImageId>;
}

/** An image found by a reference, and the tag the reference named (none for IDs and digests). */
interface Found {
  image: StoredImage;
  tag?: string;
}

/** Read-only snapshots made by `mount` are keyed so that they never look like a container's. */
const MOUNT_PREFIX = 'image-';

export class DefaultImageStore implements ImageStore {
  private readonly records: ImageRecords;
  private readonly events: EventLog;
  private reclaimed: Promise<void> | undefined;

  constructor(private readonly layout: StoreLayout, private readonly storage: Storage, private readonly opts: ImageStoreOptions = {}) {
    this.records = new ImageRecords(layout);
    this.events = new EventLog(layout);
  }

  /**
   * The first thing this store does, once: remove what a command killed mid-way left (temp files and
   * folders of dead processes, their leases' objects, a lock they held), so that no interrupted load
   * costs disk until a prune. Cheap when there is nothing: a few readdirs.
   */
  repair(): Promise<void> {
    return this.reclaim();
  }

  private reclaim(): Promise<void> {
    this.reclaimed ??= (async () => {
      await this.storage.reclaim();
      for (const dir of [this.records.dir, path.join(this.records.dir, 'tags'), path.join(this.records.dir, 'leases')]) await removeDeadTemps(dir);
      await this.records.clearStaleLock();
      await reclaimDeadLeases(this.storage, this.records);
    })();
    return this.reclaimed;
  }

  // ------------------------------------------------------------------ lookup

  async resolve(ref: string): Promise<ImageRecord> {
    const { image } = await this.find(ref);
    return {
      id: image.id,
      manifestDigest: image.manifestDigest,
      config: await this.config(image),
      layers: image.layers.map((l) => l.diffId),
      repoTags: await this.tagsOf(image.id),
    };
  }

  private async find(ref: string): Promise<Found> {
    await this.reclaim();
    const hex = idPrefix(ref);
    if (hex?.length === 64) return { image: await this.mustRead(`sha256:${hex}` as ImageId, ref) };
    if (hex && ref.startsWith('sha256:')) return { image: await this.byIdPrefix(hex, ref) };
    const parsed = parseReference(ref);
    if (parsed.digest) {
      const image = (await this.records.listImages()).find((i) => i.manifestDigest === parsed.digest);
      if (!image) throw new NotFoundError('image', ref);
      return { image };
    }
    for (const tag of candidateTags(parsed, this.opts.unqualifiedSearch)) {
      const entry = await this.records.getTag(tag);
      const image = entry && (await this.records.readImage(entry.id));
      if (image) return { image, tag };
    }
    // As Docker: a name-only reference that is hex may be a short image ID.
    if (hex && parsed.tag === undefined) return { image: await this.byIdPrefix(hex, ref) };
    throw new NotFoundError('image', ref);
  }

  private async byIdPrefix(hex: string, ref: string): Promise<StoredImage> {
    const matches = (await this.records.listImages()).filter((i) => digestHex(i.id).startsWith(hex));
    if (matches.length > 1) throw new InvalidArgumentError('image', `short ID "${ref}" matches ${matches.length} images`, 'give more characters of the ID');
    if (!matches[0]) throw new NotFoundError('image', ref);
    return matches[0];
  }

  private async mustRead(id: ImageId, ref: string): Promise<StoredImage> {
    const image = await this.records.readImage(id);
    if (!image) throw new NotFoundError('image', ref);
    return image;
  }

  private async config(image: StoredImage): Promise<OciImageConfig> {
    return JSON.parse((await this.storage.blobs.read(image.configDigest)).toString('utf8')) as OciImageConfig;
  }

  private async tagEntriesOf(id: ImageId): Promise<TagEntry[]> {
    return (await this.records.listTags()).filter((t) => t.id === id);
  }

  private async tagsOf(id: ImageId): Promise<string[]> {
    return (await this.tagEntriesOf(id)).map((t) => t.name);
  }

  // ------------------------------------------------------------------ listing and details

  async list(opts: { all?: boolean; filters?: string[] } = {}): Promise<ImageListing[]> {
    const filters = parseListFilters(opts.filters);
    await this.reclaim();
    // before=/since= name images, which must exist (docker: "No such image").
    const createdOf = (refs: string[]) => Promise.all(refs.map(async (ref) => (await this.find(ref)).image.created));
    const [before, since] = [await createdOf(filters.before), await createdOf(filters.since)];
    const [images, tags] = await Promise.all([this.records.listImages(), this.records.listTags()]);
    const labels = new Map<string, Record<string, string>>();
    if (filters.labels.length) for (const img of images) labels.set(img.id, (await this.config(img)).config?.Labels ?? {});
    return selectImages(images, tags, opts, filters, { before, since, labelsOf: (id) => labels.get(id) ?? {} });
  }

  async inspect(ref: string): Promise<ImageDetails> {
    const { image } = await this.find(ref);
    const config = await this.config(image);
    return {
      id: image.id,
      manifestDigest: image.manifestDigest,
      tags: (await this.tagEntriesOf(image.id)).map(({ name, tagged }) => ({ name, tagged })),
      digests: repoDigestRefs(image),
      created: image.created,
      size: image.size,
      config,
      layers: image.layers.map((l) => ({ diffId: l.diffId, size: l.size })),
      history: config.history ?? [],
      ...(image.parent ? { parent: image.parent } : {}),
    };
  }

  // ------------------------------------------------------------------ tags and removal

  async tag(source: string, target: string): Promise<void> {
    const name = parseTagTarget(target);
    const id = await this.records.withLock(async () => {
      const { image } = await this.find(source);
      await this.records.setTag(name, image.id);
      return image.id;
    });
    await this.events.emit('image', 'tag', id, { name });
  }

  async remove(ref: string, opts: { force?: boolean; noPrune?: boolean } = {}): Promise<RemovedImage[]> {
    const removed = await this.records.withLock(async () => {
      const { image, tag } = await this.find(ref);
      const tags = await this.tagsOf(image.id);
      // Removing one of several names only untags, even while containers use the image (Docker).
      if (tag && tags.length > 1) {
        await this.records.deleteTag(tag);
        return [{ untagged: tag }];
      }
      const running = (await this.opts.runningContainers?.(image.id)) ?? [];
      // Docker's hard conflict, checked before any soft one: by ID, force or not, nothing is removed.
      if (!tag && running[0]) {
        throw new BadStateError(`conflict: unable to delete ${shortId(image.id)} (cannot be forced) - image is being used by running container ${shortId(running[0])}`,
          `stop container ${shortId(running[0])} first; "berth rm -f" it to remove the image with it`);
      }
      if (!tag && tags.length > 1 && !opts.force) {
        throw new BadStateError(`conflict: unable to delete ${shortId(image.id)} (must be forced) - image is referenced in multiple repositories`,
          'remove it by name, one tag at a time, or force with -f');
      }
      const users = await this.containerUsers(image.id);
      if (users[0] && !opts.force) {
        throw new BadStateError(tag
          ? `conflict: unable to remove repository reference "${ref}" (must force) - container ${shortId(users[0])} is using its referenced image ${shortId(image.id)}`
          : `conflict: unable to delete ${shortId(image.id)} (must be forced) - image is being used by container ${shortId(users[0])}`,
        'remove the container first, or force with -f (the container keeps its layers)');
      }
      const images = await this.records.listImages();
      const keep = await this.keepers(images, await this.records.listTags());
      // Docker's hard conflict: a parent of other images (an intermediate) is not deleted by ID, force or not.
      if (!tag && keep.children.get(image.id)) {
        throw new BadStateError(`conflict: unable to delete ${shortId(image.id)} (cannot be forced) - image has dependent child images`,
          'remove the images built from it first');
      }
      const out: RemovedImage[] = [];
      for (const t of tag ? [tag] : tags) {
        await this.records.deleteTag(t);
        out.push({ untagged: t });
      }
      // Docker (imageDeleteHelper, quiet): a forced removal by name untags, and an image a running
      // container uses stays, dangling, without an error; one with children stays as their intermediate.
      if (running[0] || keep.children.get(image.id)) return out;
      keep.tagged.delete(image.id);
      const { ids } = await this.deleteWithParents(image, keep, !opts.noPrune);
      for (const id of ids) out.push({ deleted: id });
      return out;
    });
    for (const r of removed) {
      if (r.untagged) await this.events.emit('image', 'untag', r.untagged, { name: r.untagged });
      if (r.deleted) await this.events.emit('image', 'delete', r.deleted, {});
    }
    return removed;
  }

  async prune(opts: { all?: boolean; filters?: string[] } = {}): Promise<{ deleted: string[]; spaceReclaimed: number }> {
    const filter = parsePruneFilter(opts.filters);
    await this.reclaim();
    return this.records.withLock(async () => {
      const tags = await this.records.listTags();
      const images = await this.records.listImages();
      const keep = await this.keepers(images, tags);
      const deleted: string[] = [];
      let bytes = 0;
      // Docker's ImagesPrune: the candidates are dangling images (untagged, no child), or with `all` every
      // image but an untagged intermediate; each goes with its untagged parents (imageDeleteHelper's prune).
      for (const image of images) {
        if (keep.gone.has(image.id) || keep.used.has(image.id)) continue;
        const mine = tags.filter((t) => t.id === image.id);
        const children = keep.children.get(image.id) ?? 0;
        if ((mine.length === 0 && children > 0) || (!opts.all && (mine.length > 0 || children > 0))) continue;
        if (!prunable(filter, image.created, filter.labels.length ? (await this.config(image)).config?.Labels ?? {} : {})) continue;
        for (const t of mine) await this.records.deleteTag(t.name);
        keep.tagged.delete(image.id);
        // -a on a tagged image with a child: untagged, and kept while the child lives (Docker's quiet
        // conflict); the child's own removal, later in this loop, takes it up the chain.
        if (children > 0) continue;
        const out = await this.deleteWithParents(image, keep);
        deleted.push(...out.ids);
        bytes += out.bytes;
      }
      // Leftovers of crashed commands: unpacks flagged incomplete, half-written files, unleased objects.
      await this.storage.layers.repair();
      await removeStaleTemps(this.records.dir);
      await removeStaleTemps(path.join(this.records.dir, 'tags'));
      const collected = await collectGarbage(this.storage, this.records);
      return { deleted, spaceReclaimed: bytes + collected.bytes };
    });
  }

  /** What keeps an image from going as an unused parent: its tags, its children, containers made from it. */
  private async keepers(images: readonly StoredImage[], tags: readonly TagEntry[]): Promise<Keepers> {
    const used = new Set<string>();
    for (const s of await this.storage.snapshots.list()) if (s.owner === 'container') used.add(s.image);
    return { tagged: new Set(tags.map((t) => t.id)), children: childCounts(images), used, gone: new Set() };
  }

  /**
   * Deletes `image`, then (Docker's imageDeleteHelper with prune, as `rmi` and `image prune` do) its
   * parent when nothing keeps it any more (no tag or RepoDigest, no other child, no container), and so
   * on up the chain: a build's intermediates go with the last image that used them. Caller holds the lock.
   */
  private async deleteWithParents(image: StoredImage, keep: Keepers, prune = true): Promise<{ ids: ImageId[]; bytes: number }> {
    const ids: ImageId[] = [];
    let bytes = 0;
    for (let img: StoredImage | undefined = image; img;) {
      bytes += (await this.deleteImage(img)).bytes;
      ids.push(img.id);
      keep.gone.add(img.id);
      const parent: ImageId | undefined = img.parent;
      if (!prune || !parent) break;
      const left = (keep.children.get(parent) ?? 1) - 1;
      keep.children.set(parent, left);
      img = await this.records.readImage(parent);
      if (!img || left > 0 || keep.tagged.has(parent) || keep.used.has(parent) || img.repoDigests?.length) break;
    }
    return { ids, bytes };
  }

  /** Deletes the record, then whatever only it used. Caller holds the images lock. */
  private async deleteImage(image: StoredImage): Promise<Collected> {
    await this.storage.snapshots.remove(mountKey(image.id));
    await this.records.deleteImage(image.id);
    return collectGarbage(this.storage, this.records, {
      blobs: [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.blob)],
      layers: image.layers.map((l) => l.diffId),
    });
  }

  /** Keys of container snapshots made from the image (container IDs). */
  private async containerUsers(id: ImageId): Promise<string[]> {
    return (await this.storage.snapshots.list()).filter((s) => s.image === id && s.owner === 'container').map((s) => s.key);
  }

  // ------------------------------------------------------------------ mounts

  async mount(ref: string): Promise<string> {
    return this.records.withLock(async () => {
      const { image } = await this.find(ref);
      const key = mountKey(image.id);
      if (await this.storage.snapshots.get(key)) return this.storage.snapshots.mount(key);
      const snap = await this.storage.snapshots.prepare(key, { image: image.id, layers: image.layers.map((l) => l.diffId) }, { owner: 'image-mount', readOnly: true });
      return snap.mountpoint;
    });
  }

  /** A read-only snapshot holds nothing worth keeping: unmounting removes it. */
  async unmount(ref: string): Promise<void> {
    const { image } = await this.find(ref);
    await this.storage.snapshots.remove(mountKey(image.id));
  }

  // ------------------------------------------------------------------ adding images

  async load(input: string | Readable, opts: { signal?: AbortSignal } = {}): Promise<{ loaded: string[] }> {
    const ids = await this.ingest((ctx) => readArchive(input, ctx, opts.signal));
    for (const { id, tags } of ids) await this.events.emit('image', 'load', id, tags.length ? { name: tags.join(',') } : {});
    return { loaded: ids.flatMap(({ id, tags }) => (tags.length ? tags : [id])) };
  }

  async import(input: string | Readable, opts: { reference?: string; changes?: string[]; message?: string } = {}): Promise<string> {
    const tags = opts.reference ? [parseTagTarget(opts.reference)] : [];
    const [first] = await this.ingest(async (ctx) => [await importRootfs(ctx, input, { tags, changes: opts.changes, message: opts.message })]);
    await this.events.emit('image', 'import', first!.id, tags.length ? { name: tags.join(',') } : {});
    return first!.id;
  }

  async commit(req: ImageCommitRequest): Promise<string> {
    const tags = req.reference ? [parseTagTarget(req.reference)] : [];
    const containerConfig = applyChanges(req.containerConfig, req.changes ?? []);
    const { image } = await this.find(req.parent);
    const parentConfig = await this.config(image);
    const [first] = await this.ingest(async (ctx) => {
      const blob = await ctx.storage.blobs.ingest(req.layer);
      await ctx.lease.addBlob(blob.digest);
      // An uncompressed tar's digest is its diffID.
      const layer = await unpackLayer(ctx, blob, blob.digest, MediaType.layer);
      const created = new Date().toISOString();
      const config: OciImageConfig = {
        ...parentConfig,
        created,
        ...(req.author ? { author: req.author } : {}),
        config: containerConfig,
        rootfs: { type: 'layers', diff_ids: [...parentConfig.rootfs.diff_ids, layer.diffId] },
        history: [...(parentConfig.history ?? []), {
          created, created_by: req.createdBy, ...(req.author ? { author: req.author } : {}), ...(req.message ? { comment: req.message } : {}),
        }],
      };
      const problems = checkImageConfig(config);
      if (problems.length) throw new InvalidArgumentError('--change', `the resulting image config is not valid: ${problems.join('; ')}`);
      return [{ ...(await prepareWithNewManifest(ctx, config, [...image.layers, layer], tags)), parent: image.id }];
    });
    await this.events.emit('image', 'commit', first!.id, tags.length ? { name: tags.join(',') } : {});
    return first!.id;
  }

  async addBuilt(req: BuiltImageRequest): Promise<ImageId> {
    const parent = req.parent ? (await this.find(req.parent)).image : undefined;
    const [first] = await this.ingest(async (ctx) => {
      const layers = [...(parent?.layers ?? [])];
      if (req.layer) {
        // One pass: the tar is unpacked as it arrives and kept as the layer's tar-split, not also written
        // whole as a blob and read back (the layer of a COPY of 2,000 files: ~100 ms less).
        const { blob } = await ctx.storage.ingestLayer(req.layer, {}, { beforeCommit: (d) => ctx.lease.addLayer(d) });
        await ctx.lease.addBlob(blob.digest);
        // An uncompressed tar's digest is its diffID.
        layers.push(await unpackLayer(ctx, blob, blob.digest, MediaType.layer));
      }
      for (const l of layers) await ctx.lease.addLayer(l.diffId);
      const config: OciImageConfig = { ...req.config, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } };
      const problems = checkImageConfig(config);
      if (problems.length) throw new InvalidArgumentError('Dockerfile', `the built image config is not valid: ${problems.join('; ')}`);
      return [{ ...(await prepareWithNewManifest(ctx, config, layers, [])), ...(parent ? { parent: parent.id } : {}) }];
    });
    return first!.id;
  }

  async ensureDefault(opts: { rebuild?: boolean } = {}): Promise<string> {
    if (!opts.rebuild) {
      const tag = await this.records.getTag(DEFAULT_IMAGE);
      if (tag && (await this.records.readImage(tag.id))) return tag.id;
    }
    const [first] = await this.ingest(async (ctx) => {
      const layerTar = await buildBusyboxLayer();
      const blob = await putBlob(ctx, layerTar);
      // An uncompressed tar's digest is its diffID.
      const layer = await unpackLayer(ctx, blob, blob.digest, MediaType.layer);
      return [await prepareWithNewManifest(ctx, busyboxConfig(blob.digest), [layer], [DEFAULT_IMAGE])];
    });
    return first!.id;
  }

  async save(refs: string[], output: string | Writable, opts: { format?: ArchiveFormat } = {}): Promise<void> {
    if (!refs.length) throw new InvalidArgumentError('images', 'no image given to save', 'name at least one image');
    const items = new Map<ImageId, SaveItem>();
    for (const ref of refs) {
      const { image, tag } = await this.find(ref);
      const item = items.get(image.id) ?? { image, tags: [] };
      if (tag && !item.tags.includes(tag)) item.tags.push(tag);
      items.set(image.id, item);
    }
    await writeArchive(this.storage, [...items.values()], output, opts.format ?? 'docker-archive');
  }

  async ingestPulled(work: (writer: PullWriter) => Promise<PulledImage>): Promise<{ id: ImageId; changed: boolean }> {
    let changed = true;
    const [first] = await this.ingest(async (ctx) => {
      const pulled = await work(pullWriter(ctx));
      const config = JSON.parse((await ctx.storage.blobs.read(pulled.configDigest)).toString('utf8')) as OciImageConfig;
      const problems = checkImageConfig(config);
      if (problems.length) throw new CorruptError(`config ${pulled.configDigest} of ${pulled.name} is not a valid image config: ${problems.slice(0, 3).join('; ')}`, 'the image config does not follow the OCI image spec');
      const diffIds = config.rootfs.diff_ids;
      if (diffIds.length !== pulled.layers.length || pulled.layers.some((l, i) => l.diffId !== diffIds[i])) {
        throw new CorruptError(`${pulled.name}: the manifest's layers do not match the config's diff_ids`, 'the image is damaged in the registry; push it again');
      }
      const layers: StoredLayer[] = [];
      for (const l of pulled.layers) layers.push({ ...l, size: (await ctx.storage.layers.get(l.diffId)).size });
      const tag = pulled.tag;
      const entry = tag ? await this.records.getTag(tag) : undefined;
      const known = await this.records.readImage(pulled.configDigest as ImageId);
      changed = !(known && (!tag || entry?.id === known.id) && repoDigestRefs(known).includes(`${pulled.name}@${pulled.digest}`));
      return [{
        manifestDigest: pulled.manifestDigest, manifestMediaType: pulled.manifestMediaType, configDigest: pulled.configDigest, config, layers,
        tags: tag ? [tag] : [],
        repoDigest: {
          name: pulled.name, digest: pulled.digest, manifest: pulled.manifestDigest, manifestMediaType: pulled.manifestMediaType,
          blobs: [...pulled.extraBlobs, pulled.manifestDigest, ...pulled.layers.map((l) => l.blob)],
        },
      }];
    }, { resumable: true });
    await this.events.emit('image', 'pull', first!.id, first!.tags.length ? { name: first!.tags.join(',') } : {});
    return { id: first!.id, changed };
  }

  async pushable(ref: string, repository: string): Promise<PushableImage> {
    const { image } = await this.find(ref);
    // The manifest pulled from this repository first, then one from anywhere (its blobs are what a
    // registry already has), then the image's own.
    const rds = image.repoDigests ?? [];
    const rd = rds.find((r) => r.name === repository) ?? rds[0];
    const manifestDigest = rd?.manifest ?? image.manifestDigest;
    const manifestMediaType = rd?.manifestMediaType ?? image.manifestMediaType;
    const manifest = await this.storage.blobs.read(manifestDigest);
    const m = JSON.parse(manifest.toString('utf8')) as OciManifest;
    const blobs = [m.config, ...m.layers].map((d) => ({ digest: d.digest, size: d.size, mediaType: d.mediaType }));
    return { id: image.id, manifestDigest, manifestMediaType, manifest, blobs, sources: [...new Set(rds.filter((r) => r.manifest === manifestDigest).map((r) => r.name))] };
  }

  async addRepoDigest(ref: string, rd: { name: string; digest: Digest; manifest: Digest; manifestMediaType: string }): Promise<void> {
    await this.records.withLock(async () => {
      const { image } = await this.find(ref);
      const m = JSON.parse((await this.storage.blobs.read(rd.manifest)).toString('utf8')) as OciManifest;
      if (addRepoDigest(image, { ...rd, blobs: [rd.manifest, ...m.layers.map((l) => l.digest)] })) await this.records.writeImage(image);
    });
  }

  async openBlob(digest: Digest): Promise<{ size: number; open: () => Readable }> {
    const { size } = await this.storage.blobs.stat(digest);
    return { size, open: () => this.storage.blobs.open(digest) };
  }

  /**
   * Runs an import under a lease and commits its images and tags in one step under the images lock.
   * All or nothing: on failure, what it stored and no image uses is deleted before the error is thrown.
   */
  private async ingest(work: (ctx: IngestContext) => Promise<PreparedImage[]>, opts: { resumable?: boolean } = {}): Promise<{ id: ImageId; tags: string[] }[]> {
    await this.reclaim();
    const lease = await Lease.open(this.records, opts);
    const leftovers = () => collectGarbage(this.storage, this.records, lease, lease);
    try {
      const prepared = await work({ storage: this.storage, lease });
      return await this.records.withLock(async () => {
        const ids = await commitImages(this.storage, this.records, prepared);
        // Files the archive held but no manifest named. Failing here loses nothing: prune finds them.
        await leftovers().catch(() => {});
        return prepared.map((p, i) => ({ id: ids[i]!, tags: p.tags }));
      });
    } catch (err) {
      const failure = diskFull(err, this.layout.root) ?? err;
      // A failed pull keeps the blobs and layers it verified for the next pull (as containerd keeps
      // content); the next prune collects them if no pull does. Nothing unverified was ever stored.
      if (opts.resumable) throw failure;
      await this.records.withLock(leftovers).catch((gcErr: unknown) => {
        throw new AggregateError([failure, gcErr], `${(failure as Error).message} (and removing what it stored failed: ${(gcErr as Error).message})`);
      });
      throw failure;
    } finally {
      await lease.release();
    }
  }
}

/** The store's side of a pull: every write leased first, every blob checked against what the manifest says. */
function pullWriter(ctx: IngestContext): PullWriter {
  const { storage, lease } = ctx;
  return {
    async hasBlob(digest) {
      if (!(await storage.blobs.has(digest))) return false;
      await lease.addBlob(digest);
      // Leased now, so a prune cannot take it; if one did before, say it is missing.
      return storage.blobs.has(digest);
    },
    async hasLayer(diffId) {
      if (!(await storage.layers.has(diffId))) return false;
      await lease.addLayer(diffId);
      return storage.layers.has(diffId);
    },
    async putBlob(data, expected) {
      await putBlob(ctx, data, expected);
    },
    readBlob: (digest) => storage.blobs.read(digest),
    async putLayer(src, expected, diffId, mediaType) {
      await lease.addBlob(expected.digest);
      await lease.addLayer(diffId);
      if (await storage.layers.has(diffId)) {
        await storage.blobs.ingest(src, expected);
        return;
      }
      const { blob } = await storage.ingestLayer(src, expected, { beforeCommit: (d) => lease.addLayer(d) });
      // Unpacked in the same pass unless the speculative unpack gave up; then (or on a diffID that is
      // not the config's) unpacking from the stored blob says what is wrong.
      await unpackLayer(ctx, blob, diffId, mediaType);
    },
  };
}

function mountKey(id: ImageId): string {
  return `${MOUNT_PREFIX}${digestHex(id)}`;
}

/** ENOSPC or EDQUOT anywhere in an import's failure: say so, and where, rather than blame the input. */
function diskFull(err: unknown, root: string): RuntimeError | undefined {
  for (let e = err; e; e = (e as Error).cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') continue;
    const where = (e as NodeJS.ErrnoException).path ? ` (writing ${(e as NodeJS.ErrnoException).path})` : '';
    return new RuntimeError(`${code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded'}: the image store at ${root} is full${where}`,
      'free space on that filesystem ("berth image prune -a" removes unused images), or give --root on a larger one', { cause: e });
  }
  return undefined;
}
