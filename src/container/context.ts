import type { StoreLayout } from '../paths.js';
import { NotFoundError, runTeardown } from '../errors.js';
import type { EventLog } from '../events.js';
import { MONITOR_LOST, monitorLost } from './lost.js';
import type { ContainerDeps } from './ports.js';
import type { ContainerRecord, RecordStore } from './record.js';
import type { ListedRecord } from './catalog.js';
import type { SpecAssembler } from './spec.js';
import { checkTransition, eventOf, type ContainerState } from './state.js';

/** What every container verb works with (one per engine). */
export interface ContainerContext {
  readonly layout: StoreLayout;
  readonly deps: ContainerDeps;
  readonly records: RecordStore;
  readonly events: EventLog;
  readonly specs: SpecAssembler;
}

/**
 * The one way a container's state changes: the transition is checked against state.ts, the record saved,
 * and the transition's event emitted. Callers set the other fields (pid, exit code...) first.
 */
export async function setState(ctx: ContainerContext, rec: ContainerRecord, to: ContainerState, attributes: Record<string, string> = {}): Promise<void> {
  const from = rec.state;
  if (from !== to) checkTransition(from, to, rec.name);
  rec.state = to;
  await ctx.records.save(rec);
  const action = from === to ? undefined : eventOf(from, to);
  if (action) await ctx.events.emit('container', action, rec.id, eventAttributes(rec, attributes));
}

/** A container event's attributes, as Docker's: the container's labels, then its name and image, then `extra`. */
export function eventAttributes(rec: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
  return { ...rec.config.labels, name: rec.name, image: rec.config.image, ...extra };
}

export async function mustLoad(ctx: ContainerContext, id: string): Promise<ContainerRecord> {
  const rec = await ctx.records.load(id);
  if (!rec) throw new NotFoundError('container', id);
  return rec;
}

/** States in which the container's process may be alive: stop and rm must end it first. */
export const LIVE: ReadonlySet<ContainerState> = new Set(['running', 'paused', 'restarting']);

/**
 * For read-only views: a container whose process ended while nobody has recorded it yet (the exit hook
 * has not run) shows as exited. One whose monitor is lost is recorded by the commands that notice
 * (lost.ts); until then it shows as the recording would make it.
 */
export async function observed<R extends ListedRecord>(ctx: ContainerContext, rec: R): Promise<R> {
  if (rec.state !== 'running' && rec.state !== 'paused') return rec;
  const status = await ctx.deps.runtime.monitor.exitStatus(rec.id);
  if (status) return { ...rec, state: 'exited', exitCode: status.exitCode, finishedAt: status.finishedAt, pid: 0 };
  if (await monitorLost(ctx, rec)) return { ...rec, state: 'exited', exitCode: 255, error: MONITOR_LOST, pid: 0 };
  return rec;
}

/**
 * Undoes what a run of the container needed (runc's container, the sandbox, the rootfs mount), in the
 * order they were made, backwards. "Already gone" is success: it also finishes an interrupted teardown.
 */
export function tearDownRun(ctx: ContainerContext, id: string): Promise<void> {
  let rootfs: Promise<unknown> | undefined;
  return runTeardown([
    // The timer first: a check it starts now would find the container half gone.
    () => ctx.deps.runtime.healthTimer.stop(id),
    () => ctx.deps.runtime.logRotator.stop(id),
    // The rootfs mount is the host's alone (the container's processes hold their own namespace's copy),
    // and its umount waits on the kernel (an RCU grace period, 10-60 ms here): it runs beside runc's
    // delete and the rest instead of after them. Its failure is reported last, in its old place.
    async () => { rootfs = ctx.deps.snapshots.unmount(id).then(() => undefined, (err: unknown) => err); },
    () => ctx.deps.runtime.runc.delete(id, { force: true }),
    () => ctx.deps.volumes.unmount(id),
    () => ctx.deps.network.detach(id),
    async () => {
      const err = await rootfs;
      if (err) throw err;
    },
  ]);
}
