import { BadStateError, NotFoundError, runTeardown } from '../errors.js';
import { parsePruneFilter, prunable } from '../util/prune-filter.js';
import { failpoint } from '../util/failpoint.js';
import { withLock } from '../util/lock.js';
import { eventAttributes, LIVE, observed, setState, type ContainerContext } from './context.js';
import { containerPaths, type ContainerRecord } from './record.js';
import { resolveNoticed } from './lost.js';
import { endProcess, markStopped } from './stop.js';
import { cgroupsPathOf } from './spec.js';

/**
 * rm: a live container only with force (its process is killed first); then every host object it owns goes.
 * With force, a container that a restart policy started again between the kill and the lock is ended again:
 * the first pass marked it stopped, so no policy restarts it twice and the second pass wins.
 */
export async function removeContainer(ctx: ContainerContext, ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await removeOnce(ctx, ref, opts);
    } catch (err) {
      if (!(err instanceof RestartedMeanwhile) || attempt >= 3) throw err;
    }
  }
}

class RestartedMeanwhile extends BadStateError {}

async function removeOnce(ctx: ContainerContext, ref: string, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
  const rec = await resolveNoticed(ctx, ref);
  const live = await observed(ctx, rec);
  if (LIVE.has(live.state)) {
    if (!opts.force) {
      throw new BadStateError(`cannot remove container ${rec.name}: container is ${live.state}`,
        'stop the container before removing, or force remove with "berth rm -f"');
    }
    await markStopped(ctx, rec.id, { fromRestarting: live.state === 'restarting' });
    if (live.state !== 'restarting') await endProcess(ctx, rec.id, live.state === 'paused', 'SIGKILL', 0);
  }
  await withLock(containerPaths(ctx.layout, rec.id).lock, async () => {
    const cur = await ctx.records.load(rec.id);
    if (!cur) return;
    // Checked again under the lock: a `start` may have won the race since the check above.
    const now = await observed(ctx, cur);
    if (now.state === 'running' || now.state === 'paused') {
      if (opts.force) throw new RestartedMeanwhile(`container ${rec.name} was started again while it was being removed`, 'run the command again');
      throw new BadStateError(`cannot remove container ${rec.name}: container is ${now.state}`, 'stop the container before removing, or force remove with "berth rm -f"');
    }
    if (now.state !== cur.state) {
      // Its process ended and nobody recorded it: the record is behind what the runtime says.
      Object.assign(cur, { exitCode: now.exitCode, finishedAt: now.finishedAt, pid: 0 });
      await setState(ctx, cur, 'exited');
    }
    await setState(ctx, cur, 'removing');
    await destroy(ctx, cur, { volumes: opts.volumes });
  });
  await ctx.events.emit('container', 'destroy', rec.id, eventAttributes(rec));
}

/**
 * Undoes everything a container owns, in one sequence. "Already gone" is success, so it also finishes a
 * removal or a create that was killed, and undoes a create that failed. Anonymous volumes go with -v,
 * with --rm (Docker's run --rm), and with a create undone (nobody else can have them yet).
 */
export async function destroy(ctx: ContainerContext, rec: ContainerRecord, opts: { volumes?: boolean } = {}): Promise<void> {
  const removeAnonymous = !!opts.volumes || rec.config.autoRemove || rec.state === 'creating';
  await runTeardown([
    () => ctx.deps.runtime.healthTimer.stop(rec.id),
    () => ctx.deps.runtime.logRotator.stop(rec.id),
    // The failpoint is rm's (its main caller); a create undone here or a repair is never armed.
    () => ctx.deps.runtime.runc.delete(rec.id, { force: true }).then(() => failpoint('container.rm.after-runc-delete')),
    () => ctx.deps.network.detach(rec.id),
    () => ctx.deps.snapshots.remove(rec.id),
    // After the snapshot: a range given back is free for the next container at once.
    async () => { if (rec.config.userns?.source === 'auto') await ctx.deps.userns.allocator.release({ root: ctx.layout.root, container: rec.id }); },
    () => ctx.deps.volumes.unmount(rec.id),
    () => ctx.deps.volumes.detach(rec.id, rec.config.mounts ?? [], { removeAnonymous }),
    () => ctx.deps.runtime.cgroups.remove(cgroupsPathOf(rec)),
    () => ctx.deps.runtime.monitor.clearExit(rec.id),
    // The name before the record: a kill between the two leaves a record that repair removes again,
    // never a name held by a container that no record shows.
    () => ctx.records.releaseName(rec.name, rec.id),
    () => ctx.records.removeDir(rec.id),
  ]);
}

/** container prune: every container not live; one started or removed meanwhile is skipped. */
export async function pruneContainers(ctx: ContainerContext, filters: readonly string[] = []): Promise<{ deleted: string[] }> {
  const filter = parsePruneFilter(filters);
  const deleted: string[] = [];
  for (const rec of await ctx.records.all()) {
    if (!prunable(filter, rec.created, rec.config.labels)) continue;
    const live = await observed(ctx, rec);
    if (LIVE.has(live.state) || live.state === 'starting' || live.state === 'creating') continue;
    try {
      await removeContainer(ctx, rec.id);
    } catch (err) {
      if (err instanceof BadStateError || err instanceof NotFoundError) continue;
      throw err;
    }
    deleted.push(rec.id);
  }
  return { deleted };
}
