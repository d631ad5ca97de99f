import { withLock } from '../util/lock.js';

const chains = new Map<string, Promise<unknown>>();

/**
 * The cross-process lock file, queued first behind an in-process chain for the same path: parallel
 * attaches in one process then wait their turn instead of polling the lock file with back-off.
 */
export function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const prev = chains.get(file) ?? Promise.resolve();
  const next = prev.catch(() => {}).then(() => withLock(file, fn));
  const tail = next.catch(() => {});
  chains.set(file, tail);
  void tail.then(() => { if (chains.get(file) === tail) chains.delete(file); });
  return next;
}

/**
 * Runs `fn` now, or once more after the run in progress, sharing that run with every caller that
 * arrived meanwhile: twenty attaches regenerate the firewall a few times, not twenty.
 */
export function coalesced(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const start = (): Promise<void> => {
    running = fn().finally(() => { running = undefined; });
    return running;
  };
  return () => {
    if (!running) return start();
    queued ??= running.catch(() => {}).then(() => { queued = undefined; return start(); });
    return queued;
  };
}
