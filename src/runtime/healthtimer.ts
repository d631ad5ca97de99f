/**
 * The healthcheck timer of one container: a shell loop (loops.ts) that sleeps and then runs one check
 * as a short-lived `berth healthcheck tick ID`, which prints the next delay in seconds, or nothing when
 * the container is no longer running, which ends the loop.
 */
import type { StoreLayout } from '../paths.js';
import { createLoops, loopFile, type LoopKind } from './loops.js';

/**
 * $1 the first delay, then the tick command. A tick that fails (a lock held too long, say) keeps the
 * delay and tries again; one that prints no number means the container is gone: the loop ends.
 */
export const HEALTH_LOOP = 'd=$1; shift; while nap "$d"; do if n=$("$@" 2>/dev/null); then case $n in ""|*[!0-9.]*) exit 0;; esac; d=$n; fi; done';

/** argv[0] of the loop (its $0), which names it in `ps`: `berth-health`. */
export const HEALTH_LOOP_NAME = 'berth-health';

export const HEALTH: LoopKind = { suffix: 'health', name: HEALTH_LOOP_NAME, script: HEALTH_LOOP };

export interface HealthTimer {
  /** Starts the loop: the first check after `firstDelayMs`, then as each `tick` says. Replaces a running one. */
  start(id: string, firstDelayMs: number, tick: readonly string[]): Promise<void>;
  /** Kills the loop and whatever it runs; already gone is success. */
  stop(id: string): Promise<void>;
  /** Ids with a timer file (its loop may have died). */
  list(): Promise<string[]>;
}

export function healthTimerFile(layout: StoreLayout, id: string): string {
  return loopFile(layout, HEALTH, id);
}

export function seconds(ms: number): string {
  return (Math.max(ms, 1) / 1000).toFixed(3);
}

export function createHealthTimer(layout: StoreLayout, busybox?: string): HealthTimer {
  const loops = createLoops(layout, HEALTH, busybox);
  return {
    start: (id, firstDelayMs, tick) => loops.start(id, [seconds(firstDelayMs), ...tick]),
    stop: (id) => loops.stop(id),
    list: () => loops.list(),
  };
}
