/**
 * The runtime layer: runc, driven through the per-container monitor conmon.
 *
 * A container's life here: create (conmon starts, runs `runc create`; runc state "created") → start
 * → [pause ↔ resume] → the process exits: conmon drains the output into the log, writes the exit file
 * `<exits>/<id>`, then runs the exit command → delete (runc forgets it) → clearExit (exit file and
 * monitor dir go, before a restart or at removal).
 *
 * Exit command contract: conmon execv()s `exitCommand[0]` with `exitCommand.slice(1)` as its
 * arguments and nothing appended, with conmon's environment (Berth's at create time), stdio on
 * /dev/null, after the exit file is written. It also runs when `runc create` fails (then no exit
 * file exists) and when conmon gets SIGTERM. It runs at most once per create, as conmon's child, so
 * it must be idempotent and must not assume the exit file exists. `exitCommand[0]` must be absolute.
 */
import { promises as fsp } from 'node:fs';
import type { LogEntry } from '../types.js';
import { isAlreadyGone, NotFoundError, runTeardown, RuntimeError } from '../errors.js';
import type { HostFacts } from '../host.js';
import type { StoreLayout } from '../paths.js';
import { attachContainer, resizeTerminal, type AttachIo } from './attach.js';
import { openCgroup, type CgroupStats } from './cgroups.js';
import { execInContainer, type ExecProcess, type ExecRequest } from './exec.js';
import { clearExit, readExitStatus, waitForExit, type ExitStatus } from './exits.js';
import { readLog, type ReadLogOptions } from './logs.js';
import { killMonitor, monitorAlive, monitorPid, startMonitor, type CreateRequest } from './monitor.js';
import { Runc, type RuncStatus } from './runc.js';

export type { AttachIo, CgroupStats, CreateRequest, ExecProcess, ExecRequest, ExitStatus, ReadLogOptions };
export { parseLogRecord, parseLogTime } from './logs.js';

export interface RuntimeState {
  status: RuncStatus;
  pid: number;
}

export interface Runtime {
  /** Starts the monitor, which runs `runc create`. Throws CommandNotFoundError (127) / CannotInvokeError
   *  (126) when the command cannot be started, RuntimeError otherwise; after a failure nothing remains. */
  create(req: CreateRequest): Promise<{ pid: number }>;
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

  exitStatus(id: string): Promise<ExitStatus | undefined>;
  clearExit(id: string): Promise<void>;
  monitorPid(id: string): Promise<number | undefined>;
  monitorAlive(id: string): Promise<boolean>;
  /** Resolves with the exit code once conmon records it; rejects when `signal` aborts. */
  waitExit(id: string, signal?: AbortSignal): Promise<number>;

  readLog(logPath: string, opts?: ReadLogOptions): AsyncIterable<LogEntry>;
  /** Feeds io.stdin (via socat, see attach.ts) and copies output from the log until stopWhen() is true. */
  attach(id: string, io: AttachIo, stopWhen: () => Promise<boolean>): Promise<void>;
  /** Resizes the container's terminal (created with tty). */
  resize(id: string, rows: number, columns: number): Promise<void>;
  exec(id: string, req: ExecRequest): Promise<{ exitCode?: number; pid?: number }>;

  /** cgroupsPath as in the spec's linux.cgroupsPath (e.g. /berth/<id>). */
  stats(cgroupsPath: string): Promise<CgroupStats>;
  oomKilled(cgroupsPath: string): Promise<boolean>;
  /** rmdir of leftovers in every hierarchy; already gone is success. */
  removeCgroup(cgroupsPath: string): Promise<void>;
}

export function createRuntime(layout: StoreLayout, host: HostFacts): Runtime {
  const runc = new Runc(host.tools.runc, layout.runc);
  const bundleOf = async (id: string): Promise<string> => {
    const st = await runc.state(id);
    if (!st) throw new NotFoundError('container', id, 'the runtime does not know this container; it is not running');
    return st.bundle;
  };
  const known = <T>(id: string, p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      if (isAlreadyGone(err)) throw new NotFoundError('container', id, 'the runtime does not know this container; it is not running', { cause: err });
      throw err;
    });

  return {
    async create(req) {
      try {
        return { pid: await startMonitor(layout, host.tools.conmon, runc, req) };
      } catch (err) {
        await runTeardown([
          () => runc.delete(req.id, true),
          () => killMonitor(layout, req.id),
          () => clearExit(layout, req.id),
        ]).catch((cleanupErr: unknown) => {
          throw new AggregateError([err, cleanupErr], `creating container ${req.id} failed and its cleanup failed too`);
        });
        throw err;
      }
    },
    start: (id) => known(id, runc.start(id)),
    async state(id) {
      const st = await runc.state(id);
      if (!st) return undefined;
      // runc reports "creating" for a moment during create; callers only know the four OCI states.
      const status = (st.status as string) === 'creating' ? 'created' : st.status;
      return { status, pid: st.pid };
    },
    async kill(id, signal, opts) {
      await runc.kill(id, signal, !!opts?.all);
    },
    async delete(id, opts) {
      await runc.delete(id, !!opts?.force).catch((err: unknown) => {
        if (!isAlreadyGone(err)) throw err;
      });
    },
    pause: (id) => known(id, runc.pause(id)),
    resume: (id) => known(id, runc.resume(id)),
    update: (id, resources) => known(id, runc.update(id, resources)),
    ps: (id) => known(id, runc.ps(id)),
    list: () => runc.list(),

    exitStatus: (id) => readExitStatus(layout, id),
    clearExit: (id) => clearExit(layout, id),
    monitorPid: (id) => monitorPid(layout, id),
    monitorAlive: (id) => monitorAlive(layout, id),
    waitExit: (id, signal) => waitForExit(layout, id, signal),

    readLog: (logPath, opts) => readLog(logPath, opts),
    async attach(id, io, stopWhen) {
      const bundle = io.stdin ? await runc.state(id).then((s) => s?.bundle) : undefined;
      const socat = host.tools.socat;
      if (io.stdin && !socat) {
        throw new RuntimeError('cannot attach stdin: socat is not installed', 'install socat (apt-get install socat)');
      }
      await attachContainer(bundle, socat ?? 'socat', io, stopWhen);
    },
    resize: async (id, rows, columns) => resizeTerminal(await bundleOf(id), rows, columns),
    exec: async (id, req) => execInContainer(runc, id, await bundleOf(id), req),

    stats: async (cgroupsPath) => (await openCgroup(cgroupsPath, host.cgroupMode)).stats(),
    oomKilled: async (cgroupsPath) => (await openCgroup(cgroupsPath, host.cgroupMode)).oomKilled(),
    removeCgroup: async (cgroupsPath) => (await openCgroup(cgroupsPath, host.cgroupMode)).remove(),
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
