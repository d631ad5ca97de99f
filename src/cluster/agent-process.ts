/**
 * The cluster agent as a process: one per root, started on demand by the commands that need it
 * (`ensureAgent`), as conmon is per container and Podman's pause process per user. It runs
 * `berth system cluster-agent` (hidden), detached in a session of its own, its output in
 * RUNROOT/cluster/agent.log.
 *
 * One agent per root: RUNROOT/cluster/agent.pid is both its pidfile and its lock ("pid starttime", made
 * O_EXCL by util/lock.ts; a SIGKILLed agent's file names a dead process and is broken by the next one). A
 * second agent finds it held and exits 0 at once, so two commands that start one together end with one.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, fstatSync, promises as fsp, renameSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, LockedError, RuntimeError } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import { tagAlive } from '../util/liveness.js';
import { acquireLock } from '../util/lock.js';
import { combineProviders, registeredClusterWatchers, runAgent, type AgentExit, type AgentLog, type ClusterAgentProviderFactory } from './agent.js';
import { clusterPaths, openClusterHost } from './host.js';
import type { ClusterAccess } from './index.js';

export const DEFAULT_AGENT_TTL = 15;
export const DEFAULT_IDLE_EXIT_SECONDS = 30;
/** the log is cut (to agent.log.1, one generation kept) past this size */
const LOG_MAX_BYTES = 1 << 20;

export interface AgentProcessOptions {
  layout: Pick<StoreLayout, 'root' | 'runroot'>;
  cluster: ClusterAccess;
  ttl?: number;
  /** 0: never exit by idleness */
  idleExitSeconds?: number;
  /** default: what the network layer registered (registerClusterWatchers) */
  providers?: readonly ClusterAgentProviderFactory[];
  /** SIGTERM */
  signal?: AbortSignal;
}

/** The agent's life: lock, run until stopped or idle, clean up. 'locked': another agent runs this root. */
export async function runAgentProcess(opts: AgentProcessOptions): Promise<AgentExit | 'locked'> {
  checkAgentTimes(opts.ttl, opts.idleExitSeconds);
  const paths = clusterPaths(opts.layout);
  await fsp.mkdir(paths.run, { recursive: true, mode: 0o700 });
  let lock;
  try {
    lock = await acquireLock(paths.agentPid, 0);
  } catch (err) {
    if (err instanceof LockedError) return 'locked';
    throw err;
  }
  const log = fileLog(paths.agentLog);
  // Once only: after an idle exit dropped it, the file may already be a newer agent's.
  let held = true;
  const release = async () => {
    if (held) await lock.release();
    held = false;
  };
  try {
    log(`agent ${process.pid} started for ${opts.layout.root}`);
    const store = await opts.cluster.store();
    const { address } = await opts.cluster.advertise();
    const host = await openClusterHost(opts.layout, { address, endpoints: store.endpoints });
    log(`host ${host.id}, address ${address}, store ${store.endpoints.join(',')}`);
    const factories = opts.providers ?? registeredClusterWatchers();
    const provided = combineProviders(await Promise.all(factories.map((f) => f({ store, host, log }))));
    const exit = await runAgent({
      store, host, log, signal: opts.signal, release,
      ttl: opts.ttl ?? DEFAULT_AGENT_TTL,
      idleExitMs: (opts.idleExitSeconds ?? DEFAULT_IDLE_EXIT_SECONDS) * 1000,
      ...provided,
    });
    log(`agent ${process.pid} exits (${exit})`);
    return exit;
  } catch (err) {
    log(`agent ${process.pid} failed: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  } finally {
    await opts.cluster.close().catch(() => {});
    await release();
  }
}

/** The TTL and idle time, refused before anything starts: InvalidArgumentError names the flag. */
export function checkAgentTimes(ttl: number | undefined, idleExitSeconds: number | undefined): void {
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 2 && ttl <= 3600)) {
    throw new InvalidArgumentError('--ttl', `"${ttl}" is not a lease TTL of 2 to 3600 seconds`, `give whole seconds; the default is ${DEFAULT_AGENT_TTL}`);
  }
  if (idleExitSeconds !== undefined && !(Number.isInteger(idleExitSeconds) && idleExitSeconds >= 0 && idleExitSeconds <= 86_400)) {
    throw new InvalidArgumentError('--idle-exit', `"${idleExitSeconds}" is not 0 to 86400 seconds`, `give whole seconds (0: never exit while idle); the default is ${DEFAULT_IDLE_EXIT_SECONDS}`);
  }
}

/** Appends timestamped lines; past LOG_MAX_BYTES the file moves to agent.log.1 (the older one goes). */
function fileLog(file: string): AgentLog {
  let fd = openSync(file, 'a', 0o600);
  let size = fstatSync(fd).size;
  return (line) => {
    const text = `${new Date().toISOString()} ${line}\n`;
    try {
      if (size + text.length > LOG_MAX_BYTES) {
        closeSync(fd);
        // Sync on purpose: lines stay in order and the log's size stays bounded even when lines come fast.
        try {
          renameSync(file, `${file}.1`);
        } finally {
          fd = openSync(file, 'a', 0o600);
          size = 0;
        }
      }
      size += Buffer.byteLength(text);
      writeSync(fd, text);
    } catch {
      // A log that cannot be written must not stop the agent.
    }
  };
}

export interface AgentSettings {
  /**
   * How to run berth on this store: [node, bin/berth.js, --root, R, --runroot, RR, and the config and
   * cluster flags]; `system cluster-agent` and its options are added.
   */
  berth: readonly string[];
  ttl?: number;
  idleExitSeconds?: number;
  /** how long to wait for the agent's pidfile (default 10 s) */
  waitMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface AgentStatus {
  pid: number;
  /** "pid starttime" */
  tag: string;
}

/** The live agent of this root, if any (a pidfile naming a dead or reused pid is no agent). */
export async function agentStatus(layout: Pick<StoreLayout, 'root' | 'runroot'>): Promise<AgentStatus | undefined> {
  const tag = await readTag(clusterPaths(layout).agentPid);
  return tag && tagAlive(tag) ? { pid: Number(tag.split(' ')[0]), tag } : undefined;
}

/**
 * Starts this root's agent unless one runs; waits only for its pidfile. Two callers at once may both
 * start one: the pidfile's lock keeps one, the other exits 0, and both callers see the one that runs.
 */
export async function ensureAgent(layout: Pick<StoreLayout, 'root' | 'runroot'>, settings: AgentSettings): Promise<AgentStatus & { started: boolean }> {
  checkAgentTimes(settings.ttl, settings.idleExitSeconds);
  const running = await agentStatus(layout);
  if (running) return { ...running, started: false };
  const paths = clusterPaths(layout);
  await fsp.mkdir(paths.run, { recursive: true, mode: 0o700 });
  const [cmd, ...args] = settings.berth;
  if (!cmd) throw new RuntimeError('cannot start the cluster agent: no berth command given', 'pass the berth command line in AgentSettings.berth');
  const agentArgs = [...args, 'system', 'cluster-agent',
    ...(settings.ttl !== undefined ? ['--ttl', String(settings.ttl)] : []),
    ...(settings.idleExitSeconds !== undefined ? ['--idle-exit', String(settings.idleExitSeconds)] : [])];
  const out = openSync(paths.agentLog, 'a', 0o600);
  let child;
  try {
    // Its own session: a Ctrl-C of the command that started it, or the end of that terminal, must not end it.
    child = spawn(cmd, agentArgs, { detached: true, stdio: ['ignore', out, out], env: settings.env ?? process.env });
  } finally {
    closeSync(out);
  }
  child.on('error', () => {});
  child.unref();
  const deadline = Date.now() + (settings.waitMs ?? 10_000);
  const seeLog = `see its log, ${paths.agentLog}`;
  while (Date.now() < deadline) {
    const now = await agentStatus(layout);
    if (now) return { ...now, started: now.pid === child.pid };
    // 0: another agent took the lock first; its pidfile is about to show.
    if ((child.exitCode !== null && child.exitCode !== 0) || child.signalCode !== null) {
      const how = child.signalCode !== null ? `was killed by ${child.signalCode}` : `exited with code ${child.exitCode}`;
      throw new RuntimeError(`the cluster agent ${how} as it started`, seeLog, { command: [cmd, ...agentArgs].join(' '), exitCode: child.exitCode ?? undefined });
    }
    await sleep(25);
  }
  // Nothing is left behind: an agent too slow to take its lock is ended, not left to start later unseen.
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  throw new RuntimeError(`the cluster agent did not start within ${Math.round((settings.waitMs ?? 10_000) / 1000)} s`, seeLog, { command: [cmd, ...agentArgs].join(' ') });
}

/**
 * Stops this root's agent (for `system reset`): SIGTERM, wait, then SIGKILL, and removes its pidfile. A
 * pidfile whose pid now belongs to another process (its start time differs) names no agent: that process
 * is never signalled. Resolves true when an agent was running.
 */
export async function stopAgent(layout: Pick<StoreLayout, 'root' | 'runroot'>, opts: { timeoutMs?: number } = {}): Promise<boolean> {
  const file = clusterPaths(layout).agentPid;
  const tag = await readTag(file);
  if (!tag) return false;
  const pid = Number(tag.split(' ')[0]);
  const wasAlive = tagAlive(tag);
  if (wasAlive) {
    signalIfAlive(tag, pid, 'SIGTERM');
    if (!(await gone(tag, opts.timeoutMs ?? 10_000))) {
      signalIfAlive(tag, pid, 'SIGKILL');
      if (!(await gone(tag, 5_000))) throw new RuntimeError(`the cluster agent ${pid} did not end after SIGKILL`, `look at process ${pid} (ps -o stat= -p ${pid}); its log is ${clusterPaths(layout).agentLog}`);
    }
  }
  // A clean exit removed the file; a killed agent's stays. Only this agent's file: a new one may have started.
  if ((await readTag(file)) === tag) await fsp.rm(file, { force: true });
  return wasAlive;
}

function signalIfAlive(tag: string, pid: number, signal: NodeJS.Signals): void {
  // Checked right before the signal: the start time proves the pid is still the agent's.
  if (!tagAlive(tag)) return;
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function gone(tag: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (tagAlive(tag)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

async function readTag(file: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(file, 'utf8')).trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
