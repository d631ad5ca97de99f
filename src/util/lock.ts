import { promises as fsp, constants } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError } from '../errors.js';
import { processTag, tagAlive } from './liveness.js';

export { processStartTime } from './liveness.js';

/**
 * A cross-process lock file, one per store object (podman's per-container lock, without shared memory).
 * Node has no flock(2), so the lock is an O_EXCL file holding "pid starttime". A holder killed with
 * SIGKILL leaves the file behind; the next taker sees the pid is gone (or reused: start time differs)
 * and breaks it. Breaking is itself guarded by an O_EXCL `.break` file so two breakers cannot both win.
 *
 * Locks are taken in the order container → network → IPAM and never held while waiting on a
 * container process (STYLE.md, Concurrency).
 */
export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

const self = processTag(process.pid);

export async function acquireLock(file: string, timeoutMs = 30_000): Promise<Lock> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  for (;;) {
    try {
      const fh = await fsp.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fh.writeFile(self);
      await fh.close();
      return { path: file, release: () => fsp.rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    if (holder !== undefined && !holderAlive(holder)) {
      await breakStale(file, holder);
      continue;
    }
    // Empty: a taker between open and write, or one killed right there. A few seconds settle which.
    if (holder === undefined && (await emptyFor(file)) > EMPTY_LOCK_GRACE_MS) {
      await breakStale(file, '');
      continue;
    }
    if (Date.now() > deadline) throw new LockedError(file, holder ? `process ${holder.split(' ')[0]}` : 'another process');
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

export async function withLock<T>(file: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
  const lock = await acquireLock(file, timeoutMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * Names of the lock files in `dir` whose holders are dead: the traces of killed commands (one readdir).
 * Break guards left by a breaker killed mid-break are removed on the way (nobody else would: the lock they
 * guarded may be gone).
 */
export async function staleLocks(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.filter((n) => n.endsWith('.lock.break')).map((n) => removeDeadGuard(path.join(dir, n))));
  const names = entries.filter((n) => n.endsWith('.lock'));
  const stale = await Promise.all(names.map((n) => isStaleLock(path.join(dir, n))));
  return names.filter((_, i) => stale[i]);
}

/** Whether the lock file's holder is dead: a command killed while holding it. */
export async function isStaleLock(file: string): Promise<boolean> {
  const holder = await readHolder(file);
  if (holder !== undefined) return !holderAlive(holder);
  return (await emptyFor(file)) > EMPTY_LOCK_GRACE_MS;
}

const EMPTY_LOCK_GRACE_MS = 3_000;

async function emptyFor(file: string): Promise<number> {
  const st = await fsp.stat(file).catch(() => undefined);
  return st && st.size === 0 ? Date.now() - st.mtimeMs : 0;
}

async function readHolder(file: string): Promise<string | undefined> {
  try {
    const text = (await fsp.readFile(file, 'utf8')).trim();
    // An empty file is a taker between open and write: treat as alive for now.
    return text || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const holderAlive = tagAlive;

/** Removes `file` when the process that holds it is gone; a live holder's lock is left alone. */
export async function clearStaleLock(file: string): Promise<void> {
  const holder = await readHolder(file);
  if (holder !== undefined && !holderAlive(holder)) await breakStale(file, holder);
}

/** "pid starttime" of this process, as lock files and owned temp names hold it. */
export function ownerTag(): string {
  return self;
}

/** True when the process named by an owner tag ("pid starttime") has exited. */
export function ownerGone(tag: string): boolean {
  return !holderAlive(tag);
}

async function removeDeadGuard(guard: string): Promise<void> {
  const holder = await readHolder(guard);
  const dead = holder !== undefined ? !holderAlive(holder) : (await emptyFor(guard)) > EMPTY_LOCK_GRACE_MS;
  if (dead) await fsp.rm(guard, { force: true });
}

/** `holder` '' means an empty lock file. */
async function breakStale(file: string, holder: string): Promise<void> {
  const guard = `${file}.break`;
  try {
    const fh = await fsp.open(guard, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    // The breaker's tag: a breaker killed here leaves a guard that removeDeadGuards can tell is dead.
    await fh.writeFile(self);
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Someone else is breaking it; a guard older than 5 s belongs to a breaker that died.
    const st = await fsp.stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 5_000) await fsp.rm(guard, { force: true });
    await sleep(5);
    return;
  }
  try {
    if (((await readHolder(file)) ?? '') === holder) await fsp.rm(file, { force: true });
  } finally {
    await fsp.rm(guard, { force: true });
  }
}

