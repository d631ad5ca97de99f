import { setTimeout as sleep } from 'node:timers/promises';
import { withLock } from '../util/lock.js';
import { processTag } from '../util/liveness.js';
import { eventAttributes, LIVE, mustLoad, setState, tearDownRun, type ContainerContext } from './context.js';
import { containerPaths, type ContainerRecord } from './record.js';
import { removeContainer } from './remove.js';
import { startLocked } from './start.js';
import type { ExitStatus } from '../runtime/index.js';
import { lostExit, monitorLost } from './lost.js';
import { nextBackoff, ranFor, shouldRestart } from './status.js';

/**
 * Runs when a container's process has ended: by the monitor's exit command, by an attached `run`, by
 * stop and rm. Idempotent. Tears down what the run needed, records the exit, then applies --rm or the
 * restart policy (with Docker's back-off) outside the lock.
 */
export async function cleanupContainer(ctx: ContainerContext, ref: string): Promise<void> {
  const rec0 = await ctx.records.load(ref) ?? await ctx.records.resolve(ref).catch(() => undefined);
  if (!rec0) return;
  const lock = containerPaths(ctx.layout, rec0.id).lock;
  const next = await withLock(lock, async () => {
    const rec = await ctx.records.load(rec0.id);
    // Handed over by a command that found the container's monitor lost (lost.ts): this process waits.
    if (rec?.state === 'restarting' && rec.restarter === processTag(process.pid)) return 'restart' as const;
    if (!rec || (rec.state !== 'running' && rec.state !== 'paused')) return undefined;
    if (!(await finishExitIfEnded(ctx, rec))) return undefined;
    // A manual `restart` does not remove a --rm container (Docker's HasBeenManuallyRestarted).
    if (rec.config.autoRemove && !rec.keepOnExit) return 'remove' as const;
    if (shouldRestart(rec)) {
      // Who will restart it after the back-off: if that process dies, repair sees it (repair.ts).
      rec.restarter = processTag(process.pid);
      rec.backoffMs = nextBackoff(rec.backoffMs, ranFor(rec));
      await setState(ctx, rec, 'restarting');
      return 'restart' as const;
    }
    return undefined;
  });
  if (next === 'remove') {
    await removeContainer(ctx, rec0.id, { force: true });
  } else if (next === 'restart') {
    const rec = await mustLoad(ctx, rec0.id);
    await sleep(rec.backoffMs ?? nextBackoff(undefined, 0));
    const restarted = await withLock(lock, async () => {
      const cur = await ctx.records.load(rec0.id);
      if (!cur || cur.state !== 'restarting' || cur.manuallyStopped) return false;
      cur.restartCount += 1;
      await startLocked(ctx, cur);
      return true;
    });
    if (restarted) await ctx.events.emit('container', 'restart', rec.id, eventAttributes(rec, { restartCount: String(rec.restartCount + 1) }));
  }
}

/**
 * Under the container lock: if the container's process has ended, tear down what its run needed and
 * record the exit (`die`). Returns whether it had ended. A container not running is left as it is.
 */
export async function finishExitIfEnded(ctx: ContainerContext, rec: ContainerRecord): Promise<boolean> {
  if (rec.state !== 'running' && rec.state !== 'paused') return false;
  let status: ExitStatus & { error?: string } | undefined = await ctx.deps.runtime.monitor.exitStatus(rec.id);
  if (!status) {
    // Still running, or its monitor is about to write the exit file.
    if (!(await monitorLost(ctx, rec))) return false;
    status = await lostExit(ctx, rec);
  }
  await tearDownRun(ctx, rec.id);
  rec.exitCode = status.exitCode;
  rec.finishedAt = status.finishedAt;
  rec.oomKilled = !!status.oomKilled;
  if (status.error) rec.error = status.error;
  rec.pid = 0;
  delete rec.monitor;
  await setState(ctx, rec, 'exited', { exitCode: String(rec.exitCode) });
  return true;
}

export { LIVE };
