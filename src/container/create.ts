import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';
import { newContainerId, shortId } from '../ids.js';
import type { CreateRequest } from '../options.js';
import { failpoint } from '../util/failpoint.js';
import { withLock } from '../util/lock.js';
import { newRecord, planContainer } from './config.js';
import { setState, type ContainerContext } from './context.js';
import { generateName } from './names.js';
import { containerPaths, type ContainerRecord } from './record.js';
import { checkReachable, giveNewVolumesToRoot, hostIds } from './userns.js';
import type { IdMapping } from '../userns/index.js';
import { destroy } from './remove.js';
import type { MountPoint } from './ports.js';

/**
 * create: plan (every flag checked, nothing made) → record in state `creating` → name → snapshot →
 * `created`. A kill after the record is written leaves a `creating` record that repair destroys; a failure
 * destroys what was made, so a refused create leaves no container (Docker's behaviour).
 */
export async function createContainer(ctx: ContainerContext, req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
  const id = newContainerId();
  return withCidfile(req.cidfile, () => createPlanned(ctx, id, req));
}

/**
 * `create` with --cidfile, as the docker CLI does it on the client's side (so also for a remote engine):
 * the file claimed before, the ID written after; a failed create removes the file it made.
 */
export async function withCidfile<T extends { id: string }>(file: string | undefined, create: () => Promise<T>): Promise<T> {
  const cidfile = await openCidfile(file);
  try {
    const created = await create();
    await cidfile?.writeFile(created.id);
    await cidfile?.close();
    return created;
  } catch (err) {
    // Docker's client removes the file it made when the create fails: nothing is left behind.
    await cidfile?.close().catch(() => {});
    if (cidfile) await fsp.rm(file!, { force: true });
    throw err;
  }
}

/**
 * --cidfile: made empty before the create (O_EXCL), so that a file already there, perhaps another
 * container's, is refused as Docker refuses it, and two creates cannot both claim one path.
 */
async function openCidfile(file: string | undefined): Promise<FileHandle | undefined> {
  if (file === undefined) return undefined;
  if (!file) throw new InvalidArgumentError('--cidfile', 'no path given', 'give the path of a file that does not exist yet');
  try {
    return await fsp.open(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new InvalidArgumentError('--cidfile', `container ID file found, make sure the other container isn't running or delete ${file}`, `remove ${file}, or give another path`);
    }
    throw new InvalidArgumentError('--cidfile', `failed to create the container ID file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function createPlanned(ctx: ContainerContext, id: string, req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
  const { config, warnings, layers } = await planContainer(ctx, id, req);
  const name = req.name ?? (await freeGeneratedName(ctx));
  const rec = newRecord(id, name, config);
  try {
    await withLock(containerPaths(ctx.layout, id).lock, async () => {
      await ctx.records.save(rec);
      await ctx.records.reserveName(name, id);
      const idmap = await mapUserns(ctx, rec);
      await ctx.deps.snapshots.prepare(id, { image: config.imageId, layers }, { owner: 'container', ...(idmap ? { idmap } : {}) });
      await ctx.deps.volumes.attach(id, config.mounts ?? []);
      await populateVolumes(ctx, id, config.mounts ?? []);
      if (idmap) await giveNewVolumesToRoot(config.mounts ?? [], idmap);
      failpoint('container.create.after-snapshot');
      await setState(ctx, rec, 'created');
    });
  } catch (err) {
    await destroy(ctx, rec).catch(() => {});
    throw err;
  }
  return { id, warnings };
}

/**
 * An auto range is taken once the record exists (the registry names the container's folder, so a create
 * killed here leaves an entry the next allocation reclaims) and is written into the record before anything
 * is made with it. The container's folder (0710) gets the mapped root's group, so that the container may
 * reach the files bound into it (STORE_MODES).
 */
async function mapUserns(ctx: ContainerContext, rec: ContainerRecord): Promise<IdMapping | undefined> {
  const userns = rec.config.userns;
  if (!userns) return undefined;
  const dir = containerPaths(ctx.layout, rec.id).dir;
  if (userns.source === 'auto') {
    userns.idmap = await ctx.deps.userns.allocator.allocate({ root: ctx.layout.root, container: rec.id, marker: dir }, userns.size!);
    await ctx.records.save(rec);
  }
  await checkReachable(ctx.layout, userns.idmap!);
  await fsp.chown(dir, 0, hostIds(userns.idmap, 0, 0).gid);
  return userns.idmap;
}

/**
 * Copy-up at create, as Docker populates volumes at create: a data container that is only created has
 * filled its volumes for the containers that take them with --volumes-from.
 */
async function populateVolumes(ctx: ContainerContext, id: string, mounts: readonly MountPoint[]): Promise<void> {
  if (!mounts.some((m) => m.type === 'volume' && m.copyUp)) return;
  const rootfs = await ctx.deps.snapshots.mount(id);
  try {
    await ctx.deps.volumes.populate(id, mounts, rootfs);
  } finally {
    await ctx.deps.snapshots.unmount(id);
  }
}

async function freeGeneratedName(ctx: ContainerContext): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const name = generateName();
    if (!(await ctx.records.idForName(name))) return name;
  }
  return `${generateName()}_${shortId(newContainerId()).slice(0, 6)}`;
}
