/**
 * The healthcheck timer of one container. conmon runs no periodic work and there is no daemon (nor
 * systemd, Podman's timer) to hold a timer, and a Node process per container would cost ~40 MB: so the
 * timer is a `/bin/sh` loop (dash: ~1 MB RSS, most of it shared) that sleeps and then runs one check as
 * a short-lived `berth healthcheck tick ID`, which prints the next delay in seconds, or nothing when the
 * container is no longer running, which ends the loop.
 *
 * It runs beside conmon, detached in its own session (a CLI that exits, or a Ctrl-C in its terminal,
 * leaves it alone), not in the container's cgroup: there it would count against the container's memory
 * and pids limits, show in `top`, and be killed by the container's own `kill --all`.
 * Its tag ("pid starttime") is in `<exits>/<id>.health`; stop kills its whole process group (the loop,
 * its `sleep`, a check under way), so nothing is left sleeping.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { StoreLayout } from '../paths.js';
import { ensureDir, readdirIfExists, writeFileAtomic } from '../util/fs.js';
import { processTag, tagAlive } from '../util/liveness.js';

/**
 * $1 the first delay, then the tick command. A tick that fails (a lock held too long, say) keeps the
 * delay and tries again; one that prints no number means the container is gone: the loop ends.
 */
export const HEALTH_LOOP = 'd=$1; shift; while sleep "$d"; do if n=$("$@" 2>/dev/null); then case $n in ""|*[!0-9.]*) exit 0;; esac; d=$n; fi; done';

/** argv[0] of the loop (its $0), which names it in `ps`: `berth-health`. */
export const HEALTH_LOOP_NAME = 'berth-health';

export interface HealthTimer {
  /** Starts the loop: the first check after `firstDelayMs`, then as each `tick` says. Replaces a running one. */
  start(id: string, firstDelayMs: number, tick: readonly string[]): Promise<void>;
  /** Kills the loop and whatever it runs; already gone is success. */
  stop(id: string): Promise<void>;
  /** Ids with a timer file (its loop may have died). */
  list(): Promise<string[]>;
}

export function healthTimerFile(layout: StoreLayout, id: string): string {
  return path.join(layout.exits, `${id}.health`);
}

export function seconds(ms: number): string {
  return (Math.max(ms, 1) / 1000).toFixed(3);
}

export function createHealthTimer(layout: StoreLayout, shell = '/bin/sh'): HealthTimer {
  const timer: HealthTimer = {
    async start(id, firstDelayMs, tick) {
      await timer.stop(id);
      await ensureDir(layout.exits);
      const child = spawn(shell, ['-c', HEALTH_LOOP, HEALTH_LOOP_NAME, seconds(firstDelayMs), ...tick], { detached: true, stdio: 'ignore' });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.unref();
      await writeFileAtomic(healthTimerFile(layout, id), processTag(child.pid!) + '\n');
    },
    async stop(id) {
      const file = healthTimerFile(layout, id);
      const tag = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
      if (tag && tagAlive(tag)) {
        try {
          // The group: the loop's pid is its group's id (detached: setsid).
          process.kill(-Number(tag.split(' ')[0]), 'SIGKILL');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
      await fsp.rm(file, { force: true });
    },
    async list() {
      return (await readdirIfExists(layout.exits)).flatMap((f) => /^([0-9a-f]{64})\.health$/.exec(f)?.[1] ?? []);
    },
  };
  return timer;
}
