/**
 * The runtime layer: runc, driven through the per-container monitor conmon.
 *
 * Three roles, each its own small interface: `runc` (the OCI runtime's verbs), `monitor` (conmon: it
 * creates the container and keeps its stdio, log, terminal and exit status) and `cgroups`.
 *
 * A container's life here: monitor.create (conmon starts, runs `runc create`; runc state "created") →
 * runc.start → [runc.pause ↔ runc.resume] → the process exits: conmon drains the output into the log,
 * writes the exit file `<exits>/<id>`, then runs the exit command → runc.delete (runc forgets it) →
 * monitor.clearExit (exit file and monitor dir go, before a restart or at removal) → cgroups.remove.
 *
 * Exit command contract: conmon execv()s `exitCommand[0]` with `exitCommand.slice(1)` as its
 * arguments and nothing appended, with conmon's environment (Berth's at create time), stdio on
 * /dev/null, after the exit file is written. It also runs when `runc create` fails (then no exit
 * file exists) and when conmon gets SIGTERM. It runs at most once per create, as conmon's child, so
 * it must be idempotent and must not assume the exit file exists. `exitCommand[0]` must be absolute.
 */
import { promises as fsp } from 'node:fs';
import type { LogEntry, TerminalSize } from '../types.js';
import { isAlreadyGone, NotFoundError, runTeardown, RuntimeError } from '../errors.js';
import type { HostFacts } from '../host.js';
import type { StoreLayout } from '../paths.js';
import { attachContainer, resizeTerminal, type AttachIo } from './attach.js';
import { openCgroup, type CgroupStats } from './cgroups.js';
import { execInContainer, type ExecProcess, type RuncExecRequest } from './exec.js';
import { clearExit, exitedIds, readExitStatus, waitForExit, type ExitStatus } from './exits.js';
import { fileSize, readLog, type ReadLogOptions } from './logs.js';
import { chosenRuntime, killMonitor, monitorAlive, monitorPid, startMonitor, type MonitorCreateRequest } from './monitor.js';
import { RuncCli, type RuncStatus } from './runc.js';
import { followResizes } from './terminal.js';
import { createHealthTimer, type HealthTimer } from './healthtimer.js';
import { createLogRotator, type LogRotator } from './logrotate.js';

export type { HealthTimer } from './healthtimer.js';
export { HEALTH_LOOP_NAME } from './healthtimer.js';
export type { LogRotator, LogRotation } from './logrotate.js';
export { LOGROTATE_LOOP_NAME } from './logrotate.js';
export type { AttachIo, CgroupStats, ExecProcess, ExitStatus, MonitorCreateRequest, ReadLogOptions, RuncExecRequest };
export { parseLogRecord, parseLogTime } from './logs.js';

export interface RuntimeState {
  status: RuncStatus;
  pid: number;
}

/** runc's verbs, on containers the monitor created. Each names the container by id. */
export interface Runc {
  start(id: string): Promise<void>;
  /** undefined when runc does not know the container */
  state(id: string): Promise<RuntimeState | undefined>;
  /** A stopped or unknown container throws an error with `alreadyGone` set (isAlreadyGone()). */
  kill(id: string, signal: string | number, opts?: { all?: boolean }): Promise<void>;
  /** Already gone is success. */
  delete(id: string, opts?: { force?: boolean }): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** `runc update --resources -`: an OCI LinuxResources object. */
  update(id: string, resources: object): Promise<void>;
  ps(id: string): Promise<number[]>;
  /** Container ids runc knows under this store's runc root. */
  list(): Promise<string[]>;
  /** `runc exec`: in the foreground, resolves with the exit code; detached, with the pid. */
  exec(id: string, req: RuncExecRequest): Promise<{ exitCode?: number; pid?: number; timedOut?: boolean }>;
}

/** The per-container monitor (conmon): it creates the container and outlives us with its stdio, log and exit. */
export interface Monitor {
  /** Starts the monitor, which runs `runc create`. Throws CommandNotFoundError (127) / CannotInvokeError
   *  (126) when the command cannot be started, RuntimeError otherwise; after a failure nothing remains. */
  create(req: MonitorCreateRequest): Promise<{ pid: number }>;
  exitStatus(id: string): Promise<ExitStatus | undefined>;
  /** Ids whose exit is written (one readdir): a listing reads `exitStatus` only for these. */
  exited(): Promise<ReadonlySet<string>>;
  /** Resolves with the exit code once conmon records it; rejects when `signal` aborts. */
  waitExit(id: string, signal?: AbortSignal): Promise<number>;
  /** Forgets the exit file and the monitor dir (before a restart, at removal). */
  clearExit(id: string): Promise<void>;
  pid(id: string): Promise<number | undefined>;
  alive(id: string): Promise<boolean>;
  readLog(logPath: string, opts?: ReadLogOptions): AsyncIterable<LogEntry>;
  /**
   * Feeds io.stdin (via socat, see attach.ts) and copies output from the log until stopWhen() is true.
   * With a tty, the terminal takes io.terminal's size and follows it until then.
   */
  attach(id: string, io: AttachIo, stopWhen: () => Promise<boolean>): Promise<void>;
  /** Resizes the container's terminal (created with tty). */
  resize(id: string, size: TerminalSize): Promise<void>;
}

/** A container's cgroup, named as in the spec's linux.cgroupsPath (e.g. /berth/<id>), in every hierarchy. */
export interface Cgroups {
  stats(cgroupsPath: string): Promise<CgroupStats>;
  oomKilled(cgroupsPath: string): Promise<boolean>;
  /** rmdir of leftovers in every hierarchy; already gone is success. */
  remove(cgroupsPath: string): Promise<void>;
}

export interface Runtime {
  readonly runc: Runc;
  readonly monitor: Monitor;
  readonly cgroups: Cgroups;
  /** the per-container healthcheck loop (healthtimer.ts) */
  readonly healthTimer: HealthTimer;
  /** the per-container log rotation loop (logrotate.ts), for --log-opt max-size */
  readonly logRotator: LogRotator;
}

export function createRuntime(layout: StoreLayout, host: HostFacts): Runtime {
  const cli = new RuncCli(host.tools.runc, layout.runc, undefined, (id) => chosenRuntime(layout, id), !!host.rootless);
  return {
    runc: runcVerbs(cli),
    monitor: conmonMonitor(layout, host, cli),
    cgroups: hostCgroups(host),
    healthTimer: createHealthTimer(layout, host.tools.busybox),
    logRotator: createLogRotator(layout, host.tools.busybox),
  };
}

const NOT_RUNNING = 'the runtime does not know this container; it is not running';

async function bundleOf(cli: RuncCli, id: string): Promise<string> {
  const st = await (await cli.of(id)).state(id);
  if (!st) throw new NotFoundError('container', id, NOT_RUNNING);
  return st.bundle;
}

function runcVerbs(cli: RuncCli): Runc {
  const known = <T>(id: string, p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      if (isAlreadyGone(err)) throw new NotFoundError('container', id, NOT_RUNNING, { cause: err });
      throw err;
    });
  return {
    start: async (id) => known(id, (await cli.of(id)).start(id)),
    async state(id) {
      const st = await (await cli.of(id)).state(id);
      if (!st) return undefined;
      // runc reports "creating" for a moment during create; callers only know the four OCI states.
      const status = (st.status as string) === 'creating' ? 'created' : st.status;
      return { status, pid: st.pid };
    },
    async kill(id, signal, opts) {
      await (await cli.of(id)).kill(id, signal, !!opts?.all);
    },
    async delete(id, opts) {
      await (await cli.of(id)).delete(id, !!opts?.force).catch((err: unknown) => {
        if (!isAlreadyGone(err)) throw err;
      });
    },
    pause: async (id) => known(id, (await cli.of(id)).pause(id)),
    resume: async (id) => known(id, (await cli.of(id)).resume(id)),
    update: async (id, resources) => known(id, (await cli.of(id)).update(id, resources)),
    ps: async (id) => known(id, (await cli.of(id)).ps(id)),
    list: () => cli.list(),
    exec: async (id, req) => execInContainer(await cli.of(id), id, await bundleOf(cli, id), req),
  };
}

function conmonMonitor(layout: StoreLayout, host: HostFacts, cli: RuncCli): Monitor {
  return {
    async create(req) {
      try {
        return { pid: await startMonitor(layout, host.tools.conmon, cli, req) };
      } catch (err) {
        await runTeardown([
          async () => (await cli.of(req.id)).delete(req.id, true),
          () => killMonitor(layout, req.id),
          () => clearExit(layout, req.id),
        ]).catch((cleanupErr: unknown) => {
          throw new AggregateError([err, cleanupErr], `creating container ${req.id} failed and its cleanup failed too`);
        });
        throw err;
      }
    },
    exitStatus: (id) => readExitStatus(layout, id),
    exited: () => exitedIds(layout),
    waitExit: (id, signal) => waitForExit(layout, id, signal),
    clearExit: (id) => clearExit(layout, id),
    pid: (id) => monitorPid(layout, id),
    alive: (id) => monitorAlive(layout, id),
    readLog: (logPath, opts) => readLog(logPath, opts),
    async attach(id, io, stopWhen) {
      const terminal = io.tty ? io.terminal : undefined;
      const bundle = io.stdin || terminal ? await (await cli.of(id)).state(id).then((s) => s?.bundle) : undefined;
      const socat = host.tools.socat;
      if (io.stdin && !socat) {
        throw new RuntimeError('cannot attach stdin: socat is not installed', 'install socat (apt-get install socat)');
      }
      // "From now on" is fixed before the size is sent: what the container prints in answer to the resize
      // (a SIGWINCH handler) must not fall before the point the reader starts from.
      const fromOffset = io.fromEnd ? await fileSize(io.logPath) : undefined;
      // docker attach sends the size at once: the terminal may have been made for another client.
      const unfollow = terminal && bundle ? followResizes(terminal, (size) => resizeTerminal(bundle, size), true) : () => {};
      try {
        await attachContainer(io.stdin ? bundle : undefined, socat ?? 'socat', { ...io, ...(fromOffset !== undefined ? { fromOffset } : {}) }, stopWhen);
      } finally {
        unfollow();
      }
    },
    resize: async (id, size) => resizeTerminal(await bundleOf(cli, id), size),
  };
}

function hostCgroups(host: HostFacts): Cgroups {
  return {
    stats: async (cgroupsPath) => (await openCgroup(cgroupsPath, host.cgroupMode)).stats(),
    oomKilled: async (cgroupsPath) => (await openCgroup(cgroupsPath, host.cgroupMode)).oomKilled(),
    remove: async (cgroupsPath) => (await openCgroup(cgroupsPath, host.cgroupMode)).remove(),
  };
}

/** Used by tests and diagnostics: the monitor's resident memory in kB (VmRSS), if it runs. */
export async function monitorRssKb(pid: number): Promise<number | undefined> {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(await fsp.readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
