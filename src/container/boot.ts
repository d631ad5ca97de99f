import path from 'node:path';
import { BadStateError } from '../errors.js';
import { withLock } from '../util/lock.js';
import { eventAttributes, type ContainerContext } from './context.js';
import { finishExitIfEnded } from './exit.js';
import { containerPaths, type ContainerRecord } from './record.js';
import { repairInterrupted } from './repair.js';
import { startLocked } from './start.js';
import { shouldRestart } from './status.js';

export interface BootResult {
  /** containers started, by id */
  started: string[];
  /** containers whose policy says run but whose start failed (the record keeps the error) */
  failed: { id: string; name: string; error: string }[];
}

/** A boot waits this long for another one running at the same time (its starts may take a while). */
const BOOT_LOCK_WAIT_MS = 10 * 60_000;

/**
 * `system boot`, once at host start-up (Docker's daemon restore): records the exit of every container a
 * reboot took down (its monitor is gone), then starts every container whose policy says it should run.
 * Docker's rules: `always` (even one the user had stopped), `unless-stopped` unless the user stopped it,
 * and a container the reboot took down whose policy restarts it after that exit (`on-failure` too).
 * Idempotent: a running container is left alone. Two boots at once take turns on one lock, and the
 * second finds nothing to do.
 */
export async function bootContainers(ctx: ContainerContext): Promise<BootResult> {
  return withLock(path.join(ctx.layout.locks, 'boot.lock'), async () => {
    await repairInterrupted(ctx);
    const wanted: string[] = [];
    for (const { id } of await ctx.records.all()) {
      const want = await withLock(containerPaths(ctx.layout, id).lock, async () => {
        const rec = await ctx.records.load(id);
        if (!rec) return false;
        if (rec.state === 'running' || rec.state === 'paused') return (await finishExitIfEnded(ctx, rec)) && shouldRestart(rec);
        return rec.state === 'exited' && policyRunsAtBoot(rec);
      });
      if (want) wanted.push(id);
    }
    return startInTurn(ctx, wanted);
  }, BOOT_LOCK_WAIT_MS);
}

function policyRunsAtBoot(rec: ContainerRecord): boolean {
  const policy = rec.config.restartPolicy.name;
  return !rec.config.autoRemove && (policy === 'always' || (policy === 'unless-stopped' && !rec.manuallyStopped));
}

/**
 * Starts the containers in rounds: one that joins another's network (`--network container:X`) or links
 * to it is refused until that one runs, so it is tried again in the next round, as long as a round
 * started something.
 */
async function startInTurn(ctx: ContainerContext, ids: readonly string[]): Promise<BootResult> {
  const started: string[] = [];
  const failed: BootResult['failed'] = [];
  let pending = [...ids];
  for (;;) {
    const waiting: BootResult['failed'] = [];
    for (const id of pending) {
      try {
        if (await bootStart(ctx, id)) started.push(id);
      } catch (err) {
        const entry = { id, name: (await ctx.records.load(id))?.name ?? id, error: (err as Error).message };
        // A dependency not running (yet) is a BadStateError; anything else is final.
        (err instanceof BadStateError ? waiting : failed).push(entry);
      }
    }
    if (!waiting.length || waiting.length === pending.length) {
      failed.push(...waiting);
      return { started, failed };
    }
    pending = waiting.map((w) => w.id);
  }
}

/** Starts one container unless something else did meanwhile; emits `restart` as a policy restart does. */
async function bootStart(ctx: ContainerContext, id: string): Promise<boolean> {
  const rec = await withLock(containerPaths(ctx.layout, id).lock, async () => {
    const cur = await ctx.records.load(id);
    if (!cur || (cur.state !== 'exited' && cur.state !== 'created')) return undefined;
    cur.manuallyStopped = false;
    await startLocked(ctx, cur);
    return cur;
  });
  if (!rec) return false;
  await ctx.events.emit('container', 'restart', rec.id, eventAttributes(rec));
  return true;
}
