import { newContainerId, shortId } from '../ids.js';
import type { CreateRequest } from '../options.js';
import { failpoint } from '../util/failpoint.js';
import { withLock } from '../util/lock.js';
import { newRecord, planContainer } from './config.js';
import { setState, type ContainerContext } from './context.js';
import { generateName } from './names.js';
import { containerPaths } from './record.js';
import { destroy } from './remove.js';

/**
 * create: plan (every flag checked, nothing made) → record in state `creating` → name → snapshot →
 * `created`. A kill after the record is written leaves a `creating` record that repair destroys; a failure
 * destroys what was made, so a refused create leaves no container (Docker's behaviour).
 */
export async function createContainer(ctx: ContainerContext, req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
  const id = newContainerId();
  const { config, warnings } = await planContainer(ctx, id, req);
  const name = req.name ?? (await freeGeneratedName(ctx));
  const rec = newRecord(id, name, config);
  try {
    await withLock(containerPaths(ctx.layout, id).lock, async () => {
      await ctx.records.save(rec);
      await ctx.records.reserveName(name, id);
      const image = await ctx.deps.images.resolve(config.imageId);
      await ctx.deps.snapshots.prepare(id, { image: image.id, layers: image.layers }, { owner: 'container' });
      failpoint('container.create.after-snapshot');
      await setState(ctx, rec, 'created');
    });
  } catch (err) {
    await destroy(ctx, rec).catch(() => {});
    throw err;
  }
  return { id, warnings };
}

async function freeGeneratedName(ctx: ContainerContext): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const name = generateName();
    if (!(await ctx.records.idForName(name))) return name;
  }
  return `${generateName()}_${shortId(newContainerId()).slice(0, 6)}`;
}
