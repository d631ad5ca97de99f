import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlreadyGone, NotFoundError } from '../errors.js';
import type { ExitStatus } from '../runtime/index.js';
import { withLock } from '../util/lock.js';
import { processTag, tagAlive } from '../util/liveness.js';
import { observed, setState, type ContainerContext } from './context.js';
import { finishExitIfEnded } from './exit.js';
import { thawAbandoned } from './freeze.js';
import { containerPaths, type ContainerRecord } from './record.js';
import type { ListedRecord } from './catalog.js';
import { removeContainer } from './remove.js';
import { cgroupsPathOf } from './spec.js';
import { nextBackoff, ranFor, shouldRestart } from './status.js';

/**
 * A container whose monitor (conmon) is gone: killed (OOM killer, `kill -9`) or lost in a reboot. Nobody
 * will write its exit file or run its exit hook, so without help its record says "running" forever and
 * its restart policy never applies. There is no daemon to notice: the next command that looks at the
 * container does (any verb on it; `ps` and `system boot` for all), records what can be known of the exit,
 * and applies the restart policy.
 */

export const MONITOR_LOST = "the container's monitor was lost";

/**
 * Cheap (a read of /proc, a stat): whether the record says running while its monitor is gone and no
 * exit file says how the container ended. Liveness first, the exit file second: conmon writes the file
 * before it exits, so a monitor found dead with no file after it never wrote one.
 */
export async function monitorLost(ctx: ContainerContext, rec: ListedRecord): Promise<boolean> {
  if (rec.state !== 'running' && rec.state !== 'paused') return false;
  if (await monitorAlive(ctx, rec)) return false;
  return (await ctx.deps.runtime.monitor.exitStatus(rec.id)) === undefined;
}

/** Whether the running container's monitor is alive: a read of /proc. */
export async function monitorAlive(ctx: ContainerContext, rec: ListedRecord): Promise<boolean> {
  // A tag survives pid reuse (after a reboot any process may hold the pid); older records have none.
  return rec.monitor ? tagAlive(rec.monitor) : ctx.deps.runtime.monitor.alive(rec.id);
}

/**
 * What can be known of the exit of a container whose monitor is lost. The caller holds its lock.
 *
 * - The process outlived its monitor: Docker's daemon would adopt it again through its shim. Here nobody
 *   holds its stdio any more (its output has nowhere to go, its stdin is closed) and nobody would record
 *   its exit, so it is ended with SIGKILL: an honest 137, and the restart policy brings it back under a
 *   new monitor.
 * - It is gone too: its exit status went with the monitor that reaped it, unless the cgroup says the
 *   OOM killer took it (137). Otherwise 255, as Docker records a container it finds dead at restore.
 */
export async function lostExit(ctx: ContainerContext, rec: ContainerRecord): Promise<ExitStatus & { error: string }> {
  const runc = ctx.deps.runtime.runc;
  const st = await runc.state(rec.id);
  if (st && (st.status === 'running' || st.status === 'paused')) {
    // A frozen process cannot die of SIGKILL until thawed.
    if (st.status === 'paused') await runc.resume(rec.id).catch(() => {});
    await runc.kill(rec.id, 'SIGKILL', { all: true }).catch((err: unknown) => {
      if (!isAlreadyGone(err)) throw err;
    });
    for (let i = 0; i < 200; i++) {
      const now = await runc.state(rec.id);
      if (!now || now.status === 'stopped') break;
      await sleep(50);
    }
    return { exitCode: 137, finishedAt: new Date().toISOString(), error: `${MONITOR_LOST}; its process, left without one, was ended with SIGKILL` };
  }
  const oom = await ctx.deps.runtime.cgroups.oomKilled(cgroupsPathOf(rec)).catch(() => false);
  return {
    exitCode: oom ? 137 : 255, finishedAt: new Date().toISOString(), ...(oom ? { oomKilled: true } : {}),
    error: `${MONITOR_LOST} (killed, or the host restarted) and the exit status with it`,
  };
}

/**
 * For a command that looks at one container (inspect, logs, stop, rm...): if its monitor is gone, the
 * exit is recorded and the restart policy applied first, so the command sees the truth.
 */
export async function noticeLoss<R extends ListedRecord>(ctx: ContainerContext, rec: R): Promise<R | ContainerRecord> {
  if (rec.state === 'running') await thawAbandoned(ctx, rec.id);
  if (!(await monitorLost(ctx, rec))) return rec;
  const now = await recordLoss(ctx, rec.id);
  if (!now) throw new NotFoundError('container', rec.name);
  return now;
}

/**
 * `ps`'s `noticeLoss` then `observed`, with `exits` the exit files of its one readdir: a running container
 * with no exit file then and a live monitor (nearly every one) costs a stat and one read of /proc, and
 * shows as running as of that readdir.
 */
export async function noticedView<R extends ListedRecord>(ctx: ContainerContext, rec: R, exits: ReadonlySet<string>): Promise<R | ContainerRecord> {
  if ((rec.state === 'running' || rec.state === 'paused') && !exits.has(rec.id)) {
    if (rec.state === 'running') await thawAbandoned(ctx, rec.id);
    if (await monitorAlive(ctx, rec)) return rec;
  }
  return observed(ctx, await noticeLoss(ctx, rec));
}

/** `records.resolve` and then `noticeLoss`. */
export async function resolveNoticed(ctx: ContainerContext, ref: string): Promise<ContainerRecord> {
  return noticeLoss(ctx, await ctx.records.resolve(ref));
}

/**
 * Records the exit (`die`) under the container's lock; then --rm removes the container, or the restart
 * policy hands the restart to a restarter process that waits out the back-off. Returns the record as it
 * is now (undefined: removed).
 */
export async function recordLoss(ctx: ContainerContext, id: string): Promise<ContainerRecord | undefined> {
  const { rec, remove } = await withLock(containerPaths(ctx.layout, id).lock, async () => {
    const cur = await ctx.records.load(id);
    // Only the command that records the exit applies the policy: another one found it done.
    if (!cur || !(await monitorLost(ctx, cur)) || !(await finishExitIfEnded(ctx, cur))) return { rec: cur, remove: false };
    if (cur.config.autoRemove && !cur.keepOnExit) return { rec: cur, remove: true };
    if (shouldRestart(cur)) await handOverRestart(ctx, cur);
    return { rec: cur, remove: false };
  });
  if (!remove) return rec;
  await removeContainer(ctx, id, { force: true });
  return undefined;
}

/**
 * The noticing command is short-lived (`ps` must not sleep through a back-off of up to a minute): a
 * detached `berth container cleanup ID` waits it out and starts the container (exit.ts), as the exit
 * hook does after a normal exit. Its tag is the record's `restarter`, so if it dies the next repair
 * sees it. The caller holds the lock; the child takes it only after this state is saved.
 */
async function handOverRestart(ctx: ContainerContext, rec: ContainerRecord): Promise<void> {
  const [cmd, ...args] = ctx.deps.restartCommand(rec.id);
  const child = spawn(cmd!, args, { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
  if (!child.pid) return;
  rec.backoffMs = nextBackoff(rec.backoffMs, ranFor(rec));
  rec.restarter = processTag(child.pid);
  await setState(ctx, rec, 'restarting');
}
