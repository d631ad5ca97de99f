import { createReadStream, promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';
import { applyChanges } from './changes.js';
import { checkImageConfig } from './config-check.js';
import { blobMediaType, prepareWithNewManifest, type IngestContext, type PreparedImage } from './commit.js';
import { ociArchitecture, type OciImageConfig } from './oci.js';

export interface RootfsImportOptions {
  tags: string[];
  changes?: string[];
  message?: string;
}

/**
 * `docker import`: a root filesystem tarball (plain or compressed) becomes the one layer of a new
 * image, kept as given; the config comes from the Dockerfile-style `changes`.
 */
export async function importRootfs(ctx: IngestContext, input: string | Readable, opts: RootfsImportOptions): Promise<PreparedImage> {
  const containerConfig = applyChanges({}, opts.changes ?? []);
  // Before anything is stored: the config must be one a load would accept.
  const problems = checkImageConfig({ architecture: ociArchitecture(), os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: containerConfig });
  if (problems.length) throw new InvalidArgumentError('--change', `the resulting image config is not valid: ${problems.join('; ')}`);
  if (typeof input === 'string') await fsp.access(input).catch((err) => {
    throw new InvalidArgumentError('input', `cannot read ${input}: ${(err as Error).message}`, 'give the path of a tar file');
  });
  const { blobs, layers } = ctx.storage;
  const blob = await blobs.ingest(typeof input === 'string' ? createReadStream(input) : input);
  await ctx.lease.addBlob(blob.digest);
  const layer = await layers.unpack(blobs.open(blob.digest));
  await ctx.lease.addLayer(layer.diffId);
  const created = new Date().toISOString();
  const config: OciImageConfig = {
    created,
    architecture: ociArchitecture(),
    os: 'linux',
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, comment: opts.message ?? `Imported from ${typeof input === 'string' ? input : '-'}` }],
  };
  const stored = { diffId: layer.diffId, blob: blob.digest, blobSize: blob.size, mediaType: await blobMediaType(ctx.storage, blob.digest), size: layer.size };
  return prepareWithNewManifest(ctx, config, [stored], opts.tags);
}
