/**
 * The cluster agent's work, with no process around it (agent-process.ts is the process): keep this host's
 * lease alive, put its keys back when the lease was lost, and run the network layer's watch loops, until
 * told to stop or until the host has had nothing to keep for a while.
 *
 * A watch loop is list → resync → watch from the list's revision + 1 → apply each event; a `compacted`
 * event, a watch that ends or fails, or a list that fails, starts it over from the list (after a pause
 * while the store is away). A watcher's own errors are logged and never end the loop: one bad key must not
 * leave the host deaf to every later change.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterHost, NewLeaseHook } from './host.js';
import type { ClusterStore, KeyValue, WatchEvent } from './store.js';

/** What the network layer gives the agent: one prefix of the store it must follow. */
export interface ClusterWatcher {
  prefix: string;
  /** The whole prefix as it is now: bring local state (FDB entries, names) in line with it. */
  resync(kvs: KeyValue[]): Promise<void>;
  apply(ev: WatchEvent): Promise<void>;
}

export type AgentLog = (line: string) => void;

export interface AgentOptions {
  store: ClusterStore;
  host: ClusterHost;
  /** the lease's TTL in seconds; renewed every TTL/3 */
  ttl: number;
  /** The watchers to run, asked again at every check: loops start and stop as prefixes come and go. */
  watchers: () => Promise<ClusterWatcher[]>;
  /** True when this host has nothing left to keep in the cluster. */
  idle: () => Promise<boolean>;
  /** run with every new lease: put this host's keys back under it */
  onNewLease: readonly NewLeaseHook[];
  /** exit after being idle this long (ms; default 30 s; 0: never) */
  idleExitMs?: number;
  /** how often idle() and watchers() are asked (ms; default 5 s) */
  checkMs?: number;
  log?: AgentLog;
  /** aborting it stops the agent (SIGTERM) */
  signal?: AbortSignal;
  /** run under the lease lock once the agent has left the cluster (the process drops its pidfile) */
  release?: () => Promise<void>;
}

export type AgentExit = 'idle' | 'stopped';

/** Resolves when the agent stops: by `signal`, or by itself once idle for `idleExitMs`. */
export async function runAgent(opts: AgentOptions): Promise<AgentExit> {
  const log = opts.log ?? (() => {});
  for (;;) {
    const reason = await runRound(opts, log);
    // The lease is left alone unless nothing is worth keeping; asked under the lease lock by retire().
    let retired = false;
    try {
      const r = await opts.host.retire(opts.store, opts.idle, opts.release);
      retired = r.retired;
      if (r.revokeError) log(`revoking the lease failed (it expires by itself): ${message(r.revokeError)}`);
      else if (r.retired) log('nothing left to keep: lease revoked');
    } catch (err) {
      log(`leaving the cluster failed: ${message(err)}`);
      retired = reason === 'idle';
    }
    if (reason === 'stopped' || retired) return reason;
    // A command took the lease while this agent was about to go: its endpoint needs the agent.
    log('not idle any more: staying');
  }
}

/** One stretch of work: the keeper and the watch loops, until stopped or idle for idleExitMs. */
async function runRound(opts: AgentOptions, log: AgentLog): Promise<AgentExit> {
  if (opts.signal?.aborted) return 'stopped';
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const loops = new Map<string, { stop: AbortController; done: Promise<void> }>();
  const keeper = keepLease(opts, log, stop.signal);
  try {
    const idleExitMs = opts.idleExitMs ?? 30_000;
    const checkMs = opts.checkMs ?? 5_000;
    let idleSince: number | undefined;
    while (!stop.signal.aborted) {
      await refreshLoops(opts, loops, log, stop.signal);
      let idle = false;
      try {
        idle = await opts.idle();
      } catch (err) {
        log(`idle check failed: ${message(err)}`);
      }
      if (!idle) idleSince = undefined;
      else idleSince ??= Date.now();
      if (idleExitMs > 0 && idleSince !== undefined && Date.now() - idleSince >= idleExitMs) {
        log(`idle for ${Math.round((Date.now() - idleSince) / 1000)} s: exiting`);
        return 'idle';
      }
      await pause(checkMs, stop.signal);
    }
    return 'stopped';
  } finally {
    // Everything stops before the lease may be revoked: a keeper still running would grant a new one.
    stop.abort();
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all([keeper, ...[...loops.values()].map((l) => l.done)]);
  }
}

/** Renews the lease every TTL/3; a lost lease is replaced and the hooks put the host's keys back. */
async function keepLease(opts: AgentOptions, log: AgentLog, signal: AbortSignal): Promise<void> {
  const period = Math.max(250, (opts.ttl * 1000) / 3);
  let last: string | undefined;
  let failing = false;
  while (!signal.aborted) {
    try {
      const lease = await opts.host.lease(opts.store, opts.ttl, opts.onNewLease);
      if (lease.fresh) log(last ? `lease ${last} was lost: new lease ${lease.id}, host re-registered` : `new lease ${lease.id}, host registered`);
      else if (lease.id !== last) log(`keeping lease ${lease.id} alive (TTL ${lease.ttl} s)`);
      if (failing) log('the store answers again');
      last = lease.id;
      failing = false;
    } catch (err) {
      if (!failing) log(`keeping the lease failed: ${message(err)}`);
      failing = true;
    }
    // While the store is away, try again sooner: the lease may still be saved before its TTL runs out.
    await pause(failing ? Math.min(period, 1_000) : period, signal);
  }
}

async function refreshLoops(opts: AgentOptions, loops: Map<string, { stop: AbortController; done: Promise<void> }>, log: AgentLog, signal: AbortSignal): Promise<void> {
  let watchers: ClusterWatcher[];
  try {
    watchers = await opts.watchers();
  } catch (err) {
    return log(`listing the watchers failed: ${message(err)}`);
  }
  const wanted = new Map(watchers.map((w) => [w.prefix, w]));
  for (const [prefix, loop] of loops) {
    if (wanted.has(prefix)) continue;
    loop.stop.abort();
    await loop.done;
    loops.delete(prefix);
  }
  for (const [prefix, w] of wanted) {
    if (loops.has(prefix) || signal.aborted) continue;
    const ctl = new AbortController();
    signal.addEventListener('abort', () => ctl.abort(), { once: true });
    loops.set(prefix, { stop: ctl, done: watchLoop(opts.store, w, log, ctl.signal) });
  }
}

async function watchLoop(store: ClusterStore, w: ClusterWatcher, log: AgentLog, signal: AbortSignal): Promise<void> {
  let delay = 100;
  while (!signal.aborted) {
    let revision: number;
    try {
      const listed = await store.list(w.prefix);
      revision = listed.revision;
      try {
        await w.resync(listed.kvs);
      } catch (err) {
        log(`${w.prefix}: resync failed: ${message(err)}`);
      }
    } catch (err) {
      log(`${w.prefix}: listing failed: ${message(err)}`);
      await pause(delay, signal);
      delay = Math.min(delay * 2, 5_000);
      continue;
    }
    delay = 100;
    const watch = store.watch(w.prefix, { fromRevision: revision + 1 });
    const close = () => watch.close();
    signal.addEventListener('abort', close, { once: true });
    try {
      for await (const ev of watch) {
        if (ev.type === 'compacted') {
          log(`${w.prefix}: changes up to revision ${ev.compactRevision} were compacted away: listing again`);
          break;
        }
        try {
          await w.apply(ev);
        } catch (err) {
          log(`${w.prefix}: applying a ${ev.type} of ${ev.type === 'put' ? ev.kv.key : ev.key} failed: ${message(err)}`);
        }
      }
    } catch (err) {
      if (!signal.aborted) {
        log(`${w.prefix}: the watch failed: ${message(err)}`);
        await pause(delay, signal);
      }
    } finally {
      signal.removeEventListener('abort', close);
      watch.close();
    }
  }
}

/** Sleeps, or returns early when `signal` aborts. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What an agent's provider gets: the store, this host, and the agent's log. */
export interface AgentContext {
  store: ClusterStore;
  host: ClusterHost;
  log: AgentLog;
}

/** One layer's share of the agent's work (the network layer's global drivers). */
export interface ClusterAgentProvider {
  watchers(): Promise<ClusterWatcher[]>;
  /** true when this layer has nothing left to keep in the cluster */
  idle(): Promise<boolean>;
  /** puts this layer's keys back under a new lease */
  onNewLease?: NewLeaseHook;
}

export type ClusterAgentProviderFactory = (ctx: AgentContext) => ClusterAgentProvider | Promise<ClusterAgentProvider>;

const providers: ClusterAgentProviderFactory[] = [];

/**
 * The network layer registers what the agent process runs (a module-load side effect of the module the
 * agent's entry imports, so the cluster layer never imports the network layer above it).
 */
export function registerClusterWatchers(factory: ClusterAgentProviderFactory): void {
  if (!providers.includes(factory)) providers.push(factory);
}

export function registeredClusterWatchers(): readonly ClusterAgentProviderFactory[] {
  return providers;
}

/** The agent's options from a set of providers: every watcher, idle when all are, every hook. */
export function combineProviders(list: readonly ClusterAgentProvider[]): Pick<AgentOptions, 'watchers' | 'idle' | 'onNewLease'> {
  return {
    watchers: async () => (await Promise.all(list.map((p) => p.watchers()))).flat(),
    idle: async () => (await Promise.all(list.map((p) => p.idle()))).every(Boolean),
    onNewLease: list.flatMap((p) => (p.onNewLease ? [p.onNewLease] : [])),
  };
}
