import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { removeStaleTemps } from '../util/fs.js';
import { tagAlive } from '../util/liveness.js';
import { acquireLock, staleLocks as staleLockNames, withLock } from '../util/lock.js';
import { LIVE, observed, setState, tearDownRun, type ContainerContext } from './context.js';
import { cleanupContainer } from './exit.js';
import { containerPaths, ZERO_TIME } from './record.js';
import { destroy } from './remove.js';
import { startHealth } from './health.js';
import { IN_PROGRESS_STATES } from './state.js';

/**
 * Finishes or undoes the work of commands that were killed half-way: records in an in-progress state
 * (creating, starting, removing), a restart whose waiting process died, an exit nobody recorded. A record
 * whose lock another live process holds is left alone: that command is still running. `exits` is the
 * exit files as the caller already listed them (`monitor.exited()`).
 */
export async function repairInterrupted(ctx: ContainerContext, exits?: ReadonlySet<string>): Promise<string[]> {
  const repaired: string[] = [];
  const exited = exits ?? await ctx.deps.runtime.monitor.exited();
  const stale = await staleLocks(ctx);
  await ctx.records.sweepRemovals();
  // The catalog, not every record: this runs before every `ps` (catalog.ts).
  for (const rec of await ctx.records.listed()) {
    if (rec.state === 'restarting' && !tagAlive(rec.restarter)) {
      // The process waiting out the back-off died (reboot, kill): the restart will not happen.
      await withLock(containerPaths(ctx.layout, rec.id).lock, async () => {
        const cur = await ctx.records.load(rec.id);
        if (!cur || cur.state !== 'restarting' || tagAlive(cur.restarter)) return;
        delete cur.restarter;
        await setState(ctx, cur, 'exited');
        repaired.push(rec.id);
      });
      continue;
    }
    if ((rec.state === 'running' || rec.state === 'paused') && exited.has(rec.id) && (await ctx.deps.runtime.monitor.exitStatus(rec.id))
      && !(await attachedAlive(containerPaths(ctx.layout, rec.id).attached))) {
      // Exited while nobody ran its cleanup (an attached run was killed): finish it now.
      await cleanupContainer(ctx, rec.id).catch(() => {});
      repaired.push(rec.id);
      continue;
    }
    if (!IN_PROGRESS_STATES.has(rec.state) && !stale.has(rec.id)) continue;
    const lock = await acquireLock(containerPaths(ctx.layout, rec.id).lock, 0).catch(() => undefined);
    if (!lock) continue;
    try {
      // A command killed under this lock may have been writing a file of the container.
      if (stale.has(rec.id)) await removeStaleTemps(containerPaths(ctx.layout, rec.id).dir);
      const cur = await ctx.records.load(rec.id);
      if (!cur || !IN_PROGRESS_STATES.has(cur.state)) continue;
      if (cur.state === 'creating' || cur.state === 'removing') {
        await destroy(ctx, cur);
      } else {
        const st = await ctx.deps.runtime.runc.state(cur.id);
        if (st?.status === 'running' || st?.status === 'paused') {
          // The start got as far as runc: the container runs; only the record lagged.
          cur.pid = st.pid;
          cur.startedAt = cur.startedAt === ZERO_TIME ? new Date().toISOString() : cur.startedAt;
          // The timer of a start killed after spawning it may have ended; a new one replaces it.
          await startHealth(ctx, cur);
          await setState(ctx, cur, 'running');
          if (st.status === 'paused') await setState(ctx, cur, 'paused');
        } else {
          await tearDownRun(ctx, cur.id);
          cur.error = 'start was interrupted';
          await setState(ctx, cur, cur.finishedAt === ZERO_TIME && cur.startedAt === ZERO_TIME ? 'created' : 'exited');
        }
      }
      repaired.push(rec.id);
    } finally {
      await lock.release();
    }
  }
  return repaired;
}

/**
 * Ids of containers whose lock a killed command left behind: the evidence that something may need
 * finishing, found with one readdir. The locks of containers that are gone are removed here (no later
 * taker would ever find them), with stranded names and record-less folders; the others are taken by
 * repair.
 */
async function staleLocks(ctx: ContainerContext): Promise<Set<string>> {
  const names = await staleLockNames(ctx.layout.locks);
  if (!names.length) return new Set();
  // A command killed while it held a network lock too (run, rm): the network layer finishes its part.
  await ctx.deps.network.repair();
  const stale = new Set(names.map((f) => /^ctr-([0-9a-f]{64})\.lock$/.exec(f)?.[1]).filter((id): id is string => !!id));
  if (!stale.size) return stale;
  await ctx.records.sweepNames();
  for (const id of stale) {
    if (await ctx.records.load(id)) continue;
    stale.delete(id);
    // A create killed while writing its first record leaves a folder with no record in it.
    const lock = await acquireLock(containerPaths(ctx.layout, id).lock, 0).catch(() => undefined);
    if (!lock) continue;
    try {
      if (!(await ctx.records.load(id))) await ctx.records.removeDir(id);
    } finally {
      await lock.release();
    }
  }
  return stale;
}

/**
 * Full reconciliation for `system prune`: interrupted commands, then host objects that no record owns
 * (runc containers, snapshots, network sandboxes of removed containers).
 */
export async function reconcile(ctx: ContainerContext): Promise<string[]> {
  const cleaned = await repairInterrupted(ctx);
  const ids = new Set<string>(await ctx.records.ids());
  for (const id of await ctx.deps.runtime.runc.list()) {
    if (ids.has(id)) continue;
    await ctx.deps.runtime.runc.delete(id, { force: true }).catch(() => {});
    cleaned.push(`runc:${id}`);
  }
  for (const snap of await ctx.deps.snapshots.list()) {
    if (snap.owner !== 'container' || ids.has(snap.key)) continue;
    await ctx.deps.snapshots.remove(snap.key);
    cleaned.push(`snapshot:${snap.key}`);
  }
  await ctx.deps.snapshots.repair();
  const live = new Set<string>();
  for (const rec of await ctx.records.all()) {
    const o = await observed(ctx, rec);
    // A container some command is still creating or starting owns its sandbox too.
    if (LIVE.has(o.state) || IN_PROGRESS_STATES.has(rec.state)) live.add(rec.id);
    else if (rec.state === 'running' || rec.state === 'paused') await cleanupContainer(ctx, rec.id).catch(() => {});
  }
  cleaned.push(...(await ctx.deps.network.reconcile(live)).map((x) => `network:${x}`));
  // Loops whose container is gone or not running (its teardown was killed half-way).
  for (const [kind, loops] of [['health-timer', ctx.deps.runtime.healthTimer], ['log-rotator', ctx.deps.runtime.logRotator]] as const) {
    for (const id of await loops.list()) {
      if (live.has(id) || IN_PROGRESS_STATES.has((await ctx.records.load(id))?.state ?? 'exited')) continue;
      await loops.stop(id);
      cleaned.push(`${kind}:${id}`);
    }
  }
  return cleaned;
}

/** Whether the attached `berth run` named in attached.pid ("pid starttime") is alive: it does the exit work. */
export async function attachedAlive(file: string): Promise<boolean> {
  return tagAlive((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
}
