/**
 * A running container paused for a moment by a command of ours (`cp`, `commit --pause`), as Docker does
 * so that what is read or written is consistent. The record keeps saying "running": the pause is the
 * command's, not the user's. So the command leaves a mark with its tag (`<container>/frozen-by`): if it
 * is killed before it resumes the container, the next command that looks at the container (noticeLoss)
 * finds the mark's holder dead and thaws it, instead of a container that says running and does nothing.
 */
import { promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';
import { processTag, tagAlive } from '../util/liveness.js';
import type { ContainerContext } from './context.js';

// Not containerPaths: `ps` asks for every running container's, and that builds ten paths.
const markOf = (ctx: ContainerContext, id: string) => path.join(ctx.layout.containers, id, 'frozen-by');

/** Pauses the container; the returned function resumes it and drops the mark. */
export async function freeze(ctx: ContainerContext, id: string): Promise<() => Promise<void>> {
  const mark = markOf(ctx, id);
  await writeFileAtomic(mark, processTag(process.pid) + '\n');
  try {
    await ctx.deps.runtime.runc.pause(id);
  } catch (err) {
    await fsp.rm(mark, { force: true });
    throw err;
  }
  failpoint('container.freeze.paused');
  return async () => {
    await ctx.deps.runtime.runc.resume(id);
    await fsp.rm(mark, { force: true });
  };
}

/** Thaws a container whose freezer died before resuming it. Cheap when there is no mark: one failed stat. */
export async function thawAbandoned(ctx: ContainerContext, id: string): Promise<void> {
  const mark = markOf(ctx, id);
  // `ps` asks this of every running container: a stat that allocates no error when there is no mark.
  if (!statSync(mark, { throwIfNoEntry: false })) return;
  const tag = (await fsp.readFile(mark, 'utf8').catch(() => '')).trim();
  if (!tag || tagAlive(tag)) return;
  const st = await ctx.deps.runtime.runc.state(id);
  if (st?.status === 'paused') await ctx.deps.runtime.runc.resume(id).catch(() => {});
  await fsp.rm(mark, { force: true });
}
