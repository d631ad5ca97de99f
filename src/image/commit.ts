import { CorruptError } from '../errors.js';
import type { Digest, ImageId } from '../ids.js';
import type { BlobInfo, Storage } from '../storage/index.js';
import type { Lease } from './gc.js';
import { MediaType, canonicalJson, layerMediaType, type OciImageConfig, type OciManifest } from './oci.js';
import type { ImageRecords, RepoDigest, StoredImage, StoredLayer } from './records.js';

/** An image whose blobs and layers are all in the store (under a lease) but not yet recorded or tagged. */
export interface PreparedImage {
  manifestDigest: Digest;
  manifestMediaType: string;
  configDigest: Digest;
  config: OciImageConfig;
  layers: StoredLayer[];
  /** `name:tag` keys to point at it */
  tags: string[];
  /** where it was pulled from (registry pulls only) */
  repoDigest?: RepoDigest;
  /** the image it was built or committed from */
  parent?: ImageId;
}

/** What import paths share: the store, and the lease shielding what they write until the record exists. */
export interface IngestContext {
  storage: Storage;
  lease: Lease;
}

/**
 * Unpacks a layer blob unless its diffID is already present (layers are shared by diffID, and an
 * archive's layers were unpacked as they were read); the storage layer checks the diffID and keeps
 * nothing on a mismatch. The blob's digest was verified when it was stored, so a plain tar is not
 * hashed again.
 */
export async function unpackLayer(ctx: IngestContext, blob: BlobInfo, diffId: Digest, mediaType?: string): Promise<StoredLayer> {
  await ctx.lease.addLayer(diffId);
  const { layers, blobs } = ctx.storage;
  const info = (await layers.has(diffId))
    ? await layers.get(diffId)
    : await layers.unpack(blobs.open(blob.digest), { expectedDiffId: diffId, srcDigest: blob.digest });
  return { diffId, blob: blob.digest, blobSize: blob.size, mediaType: mediaType ?? (await blobMediaType(ctx.storage, blob.digest)), size: info.size };
}

/** Reads through `open`: an uncompressed layer blob may be virtual, rebuilt from its layer. */
export async function blobMediaType(storage: Storage, digest: Digest): Promise<string> {
  const stream = storage.blobs.open(digest);
  try {
    let head = Buffer.alloc(0);
    for await (const chunk of stream) {
      head = Buffer.concat([head, chunk as Buffer]);
      if (head.length >= 4) break;
    }
    return layerMediaType(head.subarray(0, 4));
  } finally {
    stream.destroy();
  }
}

export async function putBlob(ctx: IngestContext, data: string | Uint8Array, expected?: Partial<BlobInfo>): Promise<BlobInfo> {
  if (expected?.digest) await ctx.lease.addBlob(expected.digest);
  const info = await ctx.storage.blobs.put(data, expected);
  await ctx.lease.addBlob(info.digest);
  return info;
}

/**
 * For sources with no manifest of their own (docker-archive, import, the default image). Without
 * `configBlob` the config is stored here; with it, the archive's own bytes stay the image ID.
 */
export async function prepareWithNewManifest(ctx: IngestContext, config: OciImageConfig, layers: StoredLayer[], tags: string[], configBlob?: BlobInfo): Promise<PreparedImage> {
  configBlob ??= await putBlob(ctx, canonicalJson(config));
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    config: { mediaType: MediaType.config, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.blob, size: l.blobSize })),
  };
  const manifestBlob = await putBlob(ctx, canonicalJson(manifest));
  return { manifestDigest: manifestBlob.digest, manifestMediaType: MediaType.manifest, configDigest: configBlob.digest, config, layers, tags };
}

/**
 * Writes image records, then tags: the only step that makes an import visible. Runs under the images
 * lock; checks once more that every blob and layer exists, since a prune cannot see what a lease of a
 * crashed process once covered.
 */
export async function commitImages(storage: Storage, records: ImageRecords, prepared: readonly PreparedImage[]): Promise<ImageId[]> {
  for (const p of prepared) await checkPresent(storage, p);
  const ids: ImageId[] = [];
  for (const p of prepared) {
    const id = p.configDigest as ImageId;
    const existing = await records.readImage(id);
    const rec: StoredImage = {
      id,
      manifestDigest: existing?.manifestDigest ?? p.manifestDigest,
      manifestMediaType: existing?.manifestMediaType ?? p.manifestMediaType,
      configDigest: p.configDigest,
      layers: existing?.layers ?? p.layers,
      created: p.config.created ?? new Date(0).toISOString(),
      size: p.layers.reduce((n, l) => n + l.size, 0),
      added: existing?.added ?? new Date().toISOString(),
      ...(existing?.repoDigests?.length ? { repoDigests: existing.repoDigests } : {}),
      ...(existing ? (existing.parent ? { parent: existing.parent } : {}) : p.parent ? { parent: p.parent } : {}),
    };
    // A known image pulled (or pushed) from another place keeps its own manifest and gains this one as
    // a RepoDigest, with the blobs it names: the RepoDigest is then always pushable as it was pulled.
    const added = p.repoDigest && addRepoDigest(rec, p.repoDigest);
    if (!existing || added) await records.writeImage(rec);
    ids.push(id);
  }
  for (const [i, p] of prepared.entries()) for (const t of p.tags) await records.setTag(t, ids[i]!);
  return ids;
}

/** True when `rd` was new to `rec`. One entry per repository name, as Docker keeps the latest digest per repository. */
export function addRepoDigest(rec: StoredImage, rd: RepoDigest): boolean {
  const list = rec.repoDigests ?? [];
  if (list.some((r) => r.name === rd.name && r.digest === rd.digest && r.manifest === rd.manifest)) return false;
  rec.repoDigests = [...list.filter((r) => r.name !== rd.name), rd];
  return true;
}

async function checkPresent(storage: Storage, p: PreparedImage): Promise<void> {
  const blobs = [p.manifestDigest, p.configDigest, ...p.layers.map((l) => l.blob), ...(p.repoDigest?.blobs ?? [])];
  for (const d of blobs) {
    if (!(await storage.blobs.has(d))) throw new CorruptError(`blob ${d} of image ${p.configDigest} vanished before the image was recorded`, 'run the command again');
  }
  for (const l of p.layers) {
    if (!(await storage.layers.has(l.diffId))) throw new CorruptError(`layer ${l.diffId} of image ${p.configDigest} vanished before the image was recorded`, 'run the command again');
  }
}
