/**
 * Per-container shell loops that live beside conmon: the healthcheck timer (healthtimer.ts) and the log
 * rotator (logrotate.ts). conmon runs no periodic work and there is no daemon (nor systemd, Podman's
 * timer) to hold one, and a Node process per container would cost ~40 MB: so each is a shell loop.
 * The shell is the host's busybox (static, the embedded image's own binary) when it is there: its `read
 * -t` on a fifo that only the loop holds waits without a `sleep` process, so a loop is one process of
 * ~1.6 MB RSS between its turns. dash with `sleep` is the fallback: two processes, ~3.5 MB RSS (most of
 * it libc, shared: ~0.45 MB PSS).
 *
 * A loop runs detached in its own session (a CLI that exits, or a Ctrl-C in its terminal, leaves it
 * alone), not in the container's cgroup: there it would count against the container's memory and pids
 * limits, show in `top`, and be killed by the container's own `kill --all`. Its tag ("pid starttime") is
 * in `<exits>/<id>.<kind>`; stop kills its whole process group (the loop and whatever it runs), so
 * nothing is left sleeping.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { StoreLayout } from '../paths.js';
import { ensureDir, readdirIfExists, writeFileAtomic } from '../util/fs.js';
import { processTag, tagAlive } from '../util/liveness.js';

export interface LoopKind {
  /** names the tag file `<exits>/<id>.<suffix>` */
  readonly suffix: string;
  /** argv[0] of the loop (its $0), which names it in `ps` */
  readonly name: string;
  /** the loop, as `sh -c` runs it after NAP; its arguments are $1... */
  readonly script: string;
}

export interface ContainerLoops {
  /** Starts the loop with these arguments; replaces a running one. */
  start(id: string, args: readonly string[]): Promise<void>;
  /** Kills the loop and whatever it runs; already gone is success. */
  stop(id: string): Promise<void>;
  /** Ids with a tag file (its loop may have died). */
  list(): Promise<string[]>;
}

export function loopFile(layout: StoreLayout, kind: LoopKind, id: string): string {
  return path.join(layout.exits, `${id}.${kind.suffix}`);
}

/**
 * What a loop script may call: `nap SECONDS` (fractions allowed) waits. With busybox, fd 3 is a fifo
 * that nobody writes (named by the first argument, removed once open), so `read -t` just times out.
 * A fifo that cannot be made ends the loop rather than letting it spin.
 */
const NAP = {
  busybox: 'f=$1; shift; mkfifo -m 600 "$f" && exec 3<>"$f" || exit 1; rm -f "$f"; nap() { read -t "$1" _ <&3; return 0; }',
  sh: 'shift; nap() { sleep "$1"; }',
};

/** argv of a loop: the shell, the script with its `nap`, $0 (the loop's name), then the script's arguments. */
export function loopArgv(kind: LoopKind, args: readonly string[], fifo: string, busybox?: string): string[] {
  const shell = busybox ? [busybox, 'sh'] : ['/bin/sh'];
  return [...shell, '-c', `${busybox ? NAP.busybox : NAP.sh}\n${kind.script}`, kind.name, fifo, ...args];
}

/** `busybox`: the host's static busybox, when it has one (see above). */
export function createLoops(layout: StoreLayout, kind: LoopKind, busybox?: string): ContainerLoops {
  const ownFile = new RegExp(`^([0-9a-f]{64})\\.${kind.suffix}$`);
  const loops: ContainerLoops = {
    async start(id, args) {
      await loops.stop(id);
      await ensureDir(layout.exits);
      const [cmd, ...argv] = loopArgv(kind, args, `${loopFile(layout, kind, id)}.fifo`, busybox);
      const child = spawn(cmd!, argv, { detached: true, stdio: 'ignore' });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.unref();
      await writeFileAtomic(loopFile(layout, kind, id), processTag(child.pid!) + '\n');
    },
    async stop(id) {
      const file = loopFile(layout, kind, id);
      const tag = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
      if (tag && tagAlive(tag)) {
        try {
          // The group: the loop's pid is its group's id (detached: setsid).
          process.kill(-Number(tag.split(' ')[0]), 'SIGKILL');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      }
      // The fifo too, should the loop have been killed before it removed it.
      await Promise.all([fsp.rm(file, { force: true }), fsp.rm(`${file}.fifo`, { force: true })]);
    },
    async list() {
      return (await readdirIfExists(layout.exits)).flatMap((f) => ownFile.exec(f)?.[1] ?? []);
    },
  };
  return loops;
}
