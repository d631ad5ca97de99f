import { BadStateError, isAlreadyGone } from '../errors.js';
import { withLock } from '../util/lock.js';
import { eventAttributes, LIVE, mustLoad, observed, setState, type ContainerContext } from './context.js';
import { cleanupContainer } from './exit.js';
import { containerPaths } from './record.js';
import { resolveNoticed } from './lost.js';
import { claimExitWork, startContainer } from './start.js';
import { normalizeSignal } from './status.js';

/** Podman's stop: the stop signal, a wait of the stop timeout, SIGKILL to every process, a wait; then the exit work. */
export async function stopContainer(ctx: ContainerContext, ref: string, opts: { timeout?: number; signal?: string; forRestart?: boolean } = {}): Promise<void> {
  const rec = await resolveNoticed(ctx, ref);
  const live = await observed(ctx, rec);
  if (live.state === 'restarting') {
    // Only a container still waiting out its back-off becomes exited; one already started again is
    // stopped the normal way below.
    if (await markStopped(ctx, rec.id, { keepOnExit: opts.forRestart, fromRestarting: true })) return;
  }
  if (!LIVE.has(live.state)) {
    // Exited but not cleaned up yet: a stop still means "do not restart it".
    await markStopped(ctx, rec.id, { keepOnExit: opts.forRestart });
    return cleanupContainer(ctx, rec.id);
  }
  await markStopped(ctx, rec.id, { keepOnExit: opts.forRestart });
  const signal = normalizeSignal(opts.signal ?? rec.config.stopSignal, '--signal');
  const stopTimeout = opts.timeout ?? rec.config.stopTimeout;
  // Docker: a negative timeout waits for the container however long it takes.
  const timeout = stopTimeout < 0 ? Infinity : stopTimeout * 1000;
  await endProcess(ctx, rec.id, live.state === 'paused', signal, timeout);
  await ctx.events.emit('container', 'stop', rec.id, eventAttributes(rec));
}

export async function killContainer(ctx: ContainerContext, ref: string, signal = 'SIGKILL'): Promise<void> {
  const rec = await resolveNoticed(ctx, ref);
  const sig = normalizeSignal(signal);
  const live = await observed(ctx, rec);
  if (live.state !== 'running' && live.state !== 'paused') {
    throw new BadStateError(`cannot kill container ${rec.name}: it is not running`, 'start it first');
  }
  // Docker treats a kill with the stop signal or SIGKILL as a manual stop: restart policies stand down.
  if (sig === 'SIGKILL' || sig === rec.config.stopSignal) await markStopped(ctx, rec.id);
  // Only a SIGKILL's exit is waited for here, so only then is the exit work this process's.
  const release = sig === 'SIGKILL' ? await claimExitWork(ctx, rec.id) : async () => {};
  try {
    await ctx.deps.runtime.runc.kill(rec.id, sig);
    await ctx.events.emit('container', 'kill', rec.id, eventAttributes(rec, { signal: sig }));
    if (sig === 'SIGKILL') {
      await waitExitFor(ctx, rec.id, 10_000);
      await cleanupContainer(ctx, rec.id);
    }
  } finally {
    await release();
  }
}

export async function restartContainer(ctx: ContainerContext, ref: string, opts: { timeout?: number } = {}): Promise<void> {
  await stopContainer(ctx, ref, { ...opts, forRestart: true });
  await startContainer(ctx, ref);
  const rec = await ctx.records.resolve(ref);
  await ctx.events.emit('container', 'restart', rec.id, eventAttributes(rec));
}

/**
 * Ends a live container's process: `signal`, up to `timeoutMs`, then SIGKILL to all its processes; then
 * the exit work (cleanup), which records the exit. The one sequence behind stop, and rm -f (SIGKILL at once).
 */
export async function endProcess(ctx: ContainerContext, id: string, paused: boolean, signal: string, timeoutMs: number): Promise<void> {
  const release = await claimExitWork(ctx, id);
  try {
    if (paused) await ctx.deps.runtime.runc.resume(id).catch(() => {});
    if (signal !== 'SIGKILL') {
      await ctx.deps.runtime.runc.kill(id, signal).catch(ignoreGone);
      if (await waitExitFor(ctx, id, timeoutMs)) return await cleanupContainer(ctx, id);
    }
    await ctx.deps.runtime.runc.kill(id, 'SIGKILL', { all: true }).catch(ignoreGone);
    await waitExitFor(ctx, id, 10_000);
    await cleanupContainer(ctx, id);
  } finally {
    await release();
  }
}

/**
 * Records a user's stop, which suspends restart policies. With `fromRestarting`, also ends a pending
 * restart, but only if the container is still waiting for it: returns whether it did.
 */
export async function markStopped(ctx: ContainerContext, id: string, opts: { keepOnExit?: boolean; fromRestarting?: boolean } = {}): Promise<boolean> {
  return withLock(containerPaths(ctx.layout, id).lock, async () => {
    const rec = await mustLoad(ctx, id);
    rec.manuallyStopped = true;
    if (opts.keepOnExit) rec.keepOnExit = true;
    if (opts.fromRestarting && rec.state === 'restarting') {
      delete rec.restarter;
      await setState(ctx, rec, 'exited');
      return true;
    }
    await ctx.records.save(rec);
    return false;
  });
}

async function waitExitFor(ctx: ContainerContext, id: string, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const timer = Number.isFinite(ms) ? setTimeout(() => ac.abort(), ms) : undefined;
  try {
    await ctx.deps.runtime.monitor.waitExit(id, ac.signal);
    return true;
  } catch {
    return (await ctx.deps.runtime.monitor.exitStatus(id)) !== undefined;
  } finally {
    clearTimeout(timer);
  }
}

function ignoreGone(err: unknown): void {
  if (!isAlreadyGone(err)) throw err;
}
