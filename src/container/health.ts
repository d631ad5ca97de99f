import path from 'node:path';
import { Writable } from 'node:stream';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { readJsonIfExists, writeJsonAtomic } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import { eventAttributes, observed, type ContainerContext } from './context.js';
import {
  applyResult, checkArgs, clipOutput, initialHealth, MAX_OUTPUT_BYTES, nextDelayMs, type HealthConfig, type HealthResult, type HealthState,
} from './healthconfig.js';
import type { Spec } from './ports.js';
import { containerPaths, type ContainerRecord } from './record.js';
import type { ListedRecord } from './catalog.js';

/** A record as the views show it: with its health (health.json) when it has a healthcheck. */
export type RecordView = ContainerRecord & { health?: HealthState };
/** A listed record (catalog.ts) as `ps` shows it. */
export type ListedView = ListedRecord & { health?: HealthState };

export async function withHealth<R extends ListedRecord>(ctx: ContainerContext, rec: R): Promise<R & { health?: HealthState }> {
  if (!rec.config.health) return rec;
  return { ...rec, health: (await readHealth(ctx, rec.id)) ?? initialHealth() };
}

export async function readHealth(ctx: ContainerContext, id: string): Promise<HealthState | undefined> {
  return readJsonIfExists<HealthState>(containerPaths(ctx.layout, id).health);
}

/**
 * At each start (caller holds the lock, the container runs): health is `starting` again, and the timer
 * loop begins. Docker keeps the previous results in the log.
 */
export async function startHealth(ctx: ContainerContext, rec: ContainerRecord): Promise<void> {
  const cfg = rec.config.health;
  if (!cfg) return;
  await writeJsonAtomic(containerPaths(ctx.layout, rec.id).health, initialHealth(await readHealth(ctx, rec.id)));
  await ctx.deps.runtime.healthTimer.start(rec.id, nextDelayMs(undefined, cfg, rec.startedAt), ctx.deps.healthTickCommand(rec.id));
}

export interface HealthRun {
  /** the container's health after the check; undefined when no check ran */
  state?: HealthState;
  /** ms until the timer's next check; undefined when the timer should end */
  nextDelayMs?: number;
}

/**
 * One check (`healthcheck run`, and the timer's `tick`): the test runs in the container as an exec with
 * the timeout, outside the lock; the result is applied under it to health.json, and a change of status
 * is a `health_status: X` event. With `timer`, a container that is not running (or no longer has the
 * healthcheck) is no error: the timer just ends; a paused one is skipped, as Docker skips it.
 */
export async function runHealthcheck(ctx: ContainerContext, ref: string, opts: { timer?: boolean } = {}): Promise<HealthRun> {
  const rec0 = opts.timer ? await ctx.records.load(ref) : await ctx.records.resolve(ref);
  if (!rec0) return {};
  const cfg = rec0.config.health;
  if (!cfg) {
    if (opts.timer) return {};
    throw new InvalidArgumentError('container', `container ${rec0.name} has no healthcheck`, 'create it with --health-cmd, or from an image with a HEALTHCHECK');
  }
  const rec = await observed(ctx, rec0);
  // `starting`: the start that began this timer has not recorded `running` yet (or was killed, and the
  // next repair either records it or tears it down with the timer): wait for it.
  if ((rec.state === 'paused' || rec.state === 'starting') && opts.timer) return { nextDelayMs: nextDelayMs(await readHealth(ctx, rec.id), cfg, rec.startedAt) };
  if (rec.state !== 'running') {
    if (opts.timer) return {};
    throw new BadStateError(`container ${rec.name} is not running`, `start it first: berth start ${rec.name}`);
  }
  const result = await probe(ctx, rec, cfg);
  const state = await withLock(containerPaths(ctx.layout, rec.id).lock, async () => {
    const cur = await ctx.records.load(rec.id);
    // Restarted since (a new run has its own health) or gone: this result belongs to no run.
    if (!cur || cur.startedAt !== rec.startedAt || (await observed(ctx, cur)).state !== 'running') return undefined;
    const before = (await readHealth(ctx, rec.id)) ?? initialHealth();
    const after = applyResult(before, result, cfg, cur.startedAt);
    await writeJsonAtomic(containerPaths(ctx.layout, rec.id).health, after);
    if (after.Status !== before.Status) {
      await ctx.events.emit('container', `health_status: ${after.Status}`, rec.id, eventAttributes(cur));
    }
    return after;
  });
  if (!state) return {};
  return { state, nextDelayMs: nextDelayMs(state, cfg, rec.startedAt) };
}

async function probe(ctx: ContainerContext, rec: ContainerRecord, cfg: HealthConfig): Promise<HealthResult> {
  const start = new Date().toISOString();
  const out = new Capture();
  let exitCode: number;
  let output: string;
  try {
    const current = await readJsonIfExists<Spec>(path.join(containerPaths(ctx.layout, rec.id).bundle, 'config.json'));
    if (!current?.process) throw new BadStateError(`container ${rec.name} has no bundle`, 'start it again');
    const userDb = await ctx.deps.bundle.readUserDb(current.root?.path ?? '');
    // The container's own user, env and working directory, as `docker exec` without flags.
    const proc = ctx.deps.bundle.execProcess(current.process, { command: checkArgs(cfg) }, userDb);
    const res = await ctx.deps.runtime.runc.exec(rec.id, { process: proc, detach: false, io: { stdout: out, stderr: out }, timeoutMs: cfg.timeoutMs });
    if (res.timedOut) {
      exitCode = -1;
      output = `Health check exceeded timeout (${formatDuration(cfg.timeoutMs)})`;
    } else {
      exitCode = res.exitCode ?? -1;
      output = out.text();
    }
  } catch (err) {
    // Docker records a check that could not run (no such command...) as a failure with exit code -1.
    exitCode = -1;
    output = (err as Error).message;
  }
  return { Start: start, End: new Date().toISOString(), ExitCode: exitCode, Output: clipOutput(output) };
}

/** Go's Duration.String for whole milliseconds: 30s, 1m30s, 500ms. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

/** Keeps the first bytes of a check's stdout and stderr together, as Docker's Output. */
class Capture extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (this.size < MAX_OUTPUT_BYTES) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
