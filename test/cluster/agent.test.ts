/**
 * The per-root cluster agent against a real etcd: the host's lease and registration (host.ts), the agent's
 * loops in process (agent.ts: watchers, resync, a lease lost while the store was out of reach) and the
 * agent as the detached process commands start and stop (agent-process.ts, `berth system cluster-agent`).
 * Outages between the agent and etcd go through a TCP proxy on 127.0.0.1 that the test cuts and restores,
 * so etcd itself keeps running (and expiring leases) meanwhile.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  agentStatus, clusterPaths, ensureAgent, keys, openClusterHost, runAgent, stopAgent,
  type ClusterStore, type ClusterWatcher, type KeyValue, type LeaseId, type WatchEvent,
} from '../../src/cluster/index.js';
import { defaultRunroot } from '../../src/paths.js';
import { etcdForFile } from '../helpers/etcd.js';

const cluster = etcdForFile();
const BIN = path.resolve(__dirname, '../../bin/berth.js');
const TTL = 3;

/** Polls `check` until it returns something truthy; fails after `ms` (a generous "eventually", never a timing claim). */
async function eventually<T>(what: string, check: () => Promise<T> | T, ms = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Live processes whose command line names `dir` (the agents of a test root). */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const state = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(dir) && state !== 'Z') pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

interface Root {
  root: string;
  layout: { root: string; runroot: string };
  berth: (uri?: string) => string[];
}

const roots: Root[] = [];
const proxies: Proxy[] = [];

async function newRoot(): Promise<Root> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-agent-'));
  const layout = { root, runroot: path.join(root, 'run') };
  const r = {
    root, layout,
    berth: (uri = cluster.etcd.uri) => [process.execPath, BIN, '--root', root, '--runroot', layout.runroot, '--cluster-store', uri, '--cluster-advertise', '127.0.0.1'],
  };
  roots.push(r);
  return r;
}

/** The host id the agent of `r` made (once it has). */
async function hostIdOf(r: Root): Promise<string> {
  const file = clusterPaths(r.layout).hostFile;
  const text = await eventually('host.json', () => (existsSync(file) ? readFileSync(file, 'utf8') : ''));
  return (JSON.parse(text) as { id: string }).id;
}

function client(uri?: string): ClusterStore {
  // Closed by etcdForFile at the end of the file.
  return cluster.client({ uri, timeoutMs: 2000, watchRetryMaxMs: 200 });
}

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  for (const r of roots.splice(0)) {
    await stopAgent(r.layout).catch(() => {});
    // Nothing of the test is left: no agent, no files outside its root.
    await eventually('no agent process left', () => processesOf(r.root).length === 0, 15_000);
    expect(existsSync(defaultRunroot(r.root))).toBe(false);
    await rm(r.root, { recursive: true, force: true });
  }
});

/** A TCP proxy to etcd on 127.0.0.1 that the test can cut (every connection reset, new ones refused) and restore. */
interface Proxy {
  uri: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

async function proxyToEtcd(): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let open = true;
  const server = net.createServer((inbound) => {
    if (!open) return void inbound.destroy();
    const outbound = net.connect(cluster.etcd.port, cluster.etcd.host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const cut = () => {
    open = false;
    for (const s of sockets) s.destroy();
  };
  const p: Proxy = {
    uri: `etcd://127.0.0.1:${port}`,
    cut,
    restore: () => {
      open = true;
    },
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  proxies.push(p);
  return p;
}

/** A watcher that records what it is told. */
function recorder(prefix: string): ClusterWatcher & { state: Map<string, string>; resyncs: number; events: WatchEvent[] } {
  const w = {
    prefix,
    state: new Map<string, string>(),
    resyncs: 0,
    events: [] as WatchEvent[],
    async resync(kvs: KeyValue[]) {
      w.resyncs++;
      w.state = new Map(kvs.map((kv) => [kv.key, kv.value]));
    },
    async apply(ev: WatchEvent) {
      w.events.push(ev);
      if (ev.type === 'put') w.state.set(ev.kv.key, ev.kv.value);
      if (ev.type === 'delete') w.state.delete(ev.key);
      // A watcher's own failure is logged, never fatal: the loop must go on to the next event.
      if (ev.type === 'put' && ev.kv.value === 'poison') throw new Error('bad value');
    },
  };
  return w;
}

describe('host identity and lease', () => {
  it('keeps one id per root, registers under a lease, and re-registers through the hooks when the lease is gone', async () => {
    const r = await newRoot();
    const store = client();
    const host = await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints });
    expect(host.id).toMatch(/^[0-9a-f]{16}$/);
    expect((await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints })).id).toBe(host.id);

    const seen: LeaseId[] = [];
    const hooks = [async (l: LeaseId) => void seen.push(l)];
    const first = await host.lease(store, TTL, hooks);
    expect(first.fresh).toBe(true);
    expect(seen).toEqual([first.id]);
    const reg = await store.get(keys.host(host.id));
    expect(reg?.lease).toBe(first.id);
    expect(JSON.parse(reg!.value)).toMatchObject({ id: host.id, address: '127.0.0.1', berthVersion: expect.any(String), since: expect.any(String) });

    // Alive: the same lease, renewed; no hook.
    expect(await host.lease(store, TTL, hooks)).toMatchObject({ id: first.id, fresh: false });
    expect(seen).toHaveLength(1);

    // Gone (expired while nobody renewed it): a new lease, the host registered again, the hooks told.
    await store.revokeLease(first.id);
    const second = await host.lease(store, TTL, hooks);
    expect(second).toMatchObject({ fresh: true });
    expect(second.id).not.toBe(first.id);
    expect(seen).toEqual([first.id, second.id]);
    expect((await store.get(keys.host(host.id)))?.lease).toBe(second.id);

    // A hook that fails leaves the lease pending: the next call runs the hooks again.
    await store.revokeLease(second.id);
    let fail = true;
    const flaky = [async () => {
      if (fail) throw new Error('etcd said no');
    }];
    await expect(host.lease(store, TTL, flaky)).rejects.toThrow(/re-registering .* failed: etcd said no/);
    fail = false;
    const third = await host.lease(store, TTL, [...flaky, ...hooks]);
    expect(third.fresh).toBe(false);
    expect(seen.at(-1)).toBe(third.id);
    // Not idle: nothing happens.
    expect(await host.retire(store, async () => false)).toEqual({ retired: false });
    expect((await store.get(keys.host(host.id)))?.lease).toBe(third.id);
    expect(await host.retire(store)).toEqual({ retired: true });
    expect(await store.get(keys.host(host.id))).toBeUndefined();
    expect(existsSync(host.paths.leaseFile)).toBe(false);
  });

  it('runs the hooks of a new lease again after a process killed before they ran', async () => {
    const r = await newRoot();
    const store = client();
    // The agent grants the first lease, registers, and is killed right before the hooks.
    // ensureAgent may see it alive for a moment, or see it killed: either is the agent's fate here.
    await ensureAgent(r.layout, { berth: r.berth(), ttl: 30, idleExitSeconds: 0, env: { ...process.env, BERTH_FAILPOINT: 'cluster.lease.before-hooks' } })
      .catch((err: Error) => expect(err.message).toMatch(/killed by SIGKILL/));
    await eventually('the agent killed at the failpoint', async () => (await agentStatus(r.layout)) === undefined && processesOf(r.root).length === 0);
    const pending = JSON.parse(readFileSync(clusterPaths(r.layout).leaseFile, 'utf8')) as { id: LeaseId; pending: boolean };
    expect(pending.pending).toBe(true);
    const host = await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints });
    const seen: LeaseId[] = [];
    expect(await host.lease(store, 30, [async (l) => void seen.push(l)])).toEqual({ id: pending.id, ttl: expect.any(Number), fresh: false });
    expect(seen).toEqual([pending.id]);
    expect(JSON.parse(readFileSync(clusterPaths(r.layout).leaseFile, 'utf8'))).toMatchObject({ pending: false });
    await host.retire(store);
  });

  it('refuses a host file it cannot read, naming it', async () => {
    const r = await newRoot();
    const { hostFile } = clusterPaths(r.layout);
    await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: [] });
    await writeFile(hostFile, '{"id": "../../etc"}');
    await expect(openClusterHost(r.layout, { address: '127.0.0.1', endpoints: [] })).rejects.toThrow(`${hostFile} holds no valid host id`);
  });
});

describe('runAgent (in process)', () => {
  it('runs a watcher: puts and deletes by another client, across an etcd restart', async () => {
    const r = await newRoot();
    const store = client();
    const other = client();
    const host = await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints });
    const prefix = `/agent-test/${host.id}/`;
    await other.put(`${prefix}before`, '0');
    const w = recorder(prefix);
    const stop = new AbortController();
    const done = runAgent({ store, host, ttl: TTL, watchers: async () => [w], idle: async () => false, onNewLease: [], checkMs: 100, signal: stop.signal });
    try {
      await eventually('the first resync', () => w.resyncs === 1 && w.state.get(`${prefix}before`) === '0');
      await other.put(`${prefix}a`, 'poison');
      await other.put(`${prefix}b`, '2');
      await other.delete(`${prefix}before`);
      await eventually('the puts and the delete', () => w.state.has(`${prefix}b`) && !w.state.has(`${prefix}before`));
      expect(w.state.get(`${prefix}a`)).toBe('poison');

      await cluster.etcd.kill();
      await cluster.etcd.restart();
      await other.put(`${prefix}c`, '3');
      await other.delete(`${prefix}a`);
      await eventually('the changes after the restart', () => w.state.get(`${prefix}c`) === '3' && !w.state.has(`${prefix}a`));
      expect((await store.get(keys.host(host.id)))?.value).toContain(host.id);
    } finally {
      stop.abort();
      expect(await done).toBe('stopped');
      await other.deletePrefix(prefix);
    }
    // Not idle when stopped: the lease stays for the next agent to renew.
    expect(existsSync(host.paths.leaseFile)).toBe(true);
  });

  it('re-lists and resyncs when the changes it missed while cut off were compacted away', async () => {
    const r = await newRoot();
    const proxy = await proxyToEtcd();
    const store = client(proxy.uri);
    const other = client();
    const host = await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints });
    const prefix = `/agent-test/${host.id}/`;
    const w = recorder(prefix);
    await other.put(`${prefix}gone`, 'x');
    const stop = new AbortController();
    const done = runAgent({ store, host, ttl: 30, watchers: async () => [w], idle: async () => false, onNewLease: [], checkMs: 100, signal: stop.signal });
    try {
      await eventually('the first resync', () => w.resyncs === 1 && w.state.has(`${prefix}gone`));
      proxy.cut();
      await other.delete(`${prefix}gone`);
      const rev = await other.put(`${prefix}new`, 'y');
      cluster.etcd.ctl(['compaction', String(rev)]);
      proxy.restore();
      await eventually('a resync that sees what changed while cut off', () => w.resyncs >= 2 && w.state.has(`${prefix}new`) && !w.state.has(`${prefix}gone`));
    } finally {
      stop.abort();
      await done;
      await other.deletePrefix(prefix);
    }
  });

  it('gets a new lease after one lost while the store was out of reach, and the hooks re-register', async () => {
    const r = await newRoot();
    const proxy = await proxyToEtcd();
    const store = client(proxy.uri);
    const other = client();
    const host = await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints });
    const endpointKey = `/agent-test/${host.id}/endpoint`;
    const leases: LeaseId[] = [];
    const hook = async (lease: LeaseId) => {
      leases.push(lease);
      await store.put(endpointKey, 'mine', { lease });
    };
    const stop = new AbortController();
    const done = runAgent({ store, host, ttl: 2, watchers: async () => [], idle: async () => false, onNewLease: [hook], checkMs: 100, signal: stop.signal });
    try {
      await eventually('the first lease', () => leases.length === 1);
      proxy.cut();
      // etcd runs on: the lease nobody can renew expires, and its keys with it.
      await eventually('the lease to expire', async () => (await other.get(endpointKey)) === undefined && (await other.get(keys.host(host.id))) === undefined);
      proxy.restore();
      await eventually('a new lease with the keys put back', async () => leases.length === 2 && (await other.get(endpointKey))?.lease === leases[1]);
      expect((await other.get(keys.host(host.id)))?.lease).toBe(leases[1]);
    } finally {
      stop.abort();
      await done;
      await other.delete(endpointKey);
    }
  });
});

describe('runAgent leaving', () => {
  it('stays when work arrives as it is about to leave, and revokes the lease only once idle at the end', async () => {
    const r = await newRoot();
    const store = client();
    const host = await openClusterHost(r.layout, { address: '127.0.0.1', endpoints: store.endpoints });
    const lines: string[] = [];
    let busy = false;
    let turnedBusy = 0;
    const log = (line: string) => {
      lines.push(line);
      // The first time it decides to go, a command records an endpoint: retire()'s last look must see it.
      if (/^idle for/.test(line) && turnedBusy++ === 0) busy = true;
    };
    const done = runAgent({ store, host, ttl: TTL, watchers: async () => [], idle: async () => !busy, onNewLease: [], idleExitMs: 100, checkMs: 50, log });
    await eventually('the agent to stay', () => lines.includes('not idle any more: staying'));
    const lease = await eventually('the lease kept', () => store.get(keys.host(host.id)));
    busy = false;
    expect(await done).toBe('idle');
    expect(await store.get(keys.host(host.id))).toBeUndefined();
    expect(lines.filter((l) => l === 'nothing left to keep: lease revoked')).toHaveLength(1);
    expect(lease.lease).toBeDefined();
  });
});

describe('the agent process', () => {
  it('keeps a short-TTL lease alive well past its TTL; a second agent exits at once', async () => {
    const r = await newRoot();
    const store = client();
    const agent = await ensureAgent(r.layout, { berth: r.berth(), ttl: TTL, idleExitSeconds: 0 });
    expect(agent.started).toBe(true);
    const id = await hostIdOf(r);
    const reg = await eventually('the registration', () => store.get(keys.host(id)));
    await sleep(TTL * 3 * 1000);
    expect((await store.get(keys.host(id)))?.lease).toBe(reg.lease);
    console.log(`agent RSS: ${/VmRSS:\s*(\d+ kB)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]}`);

    const [cmd, ...args] = r.berth();
    const second = spawn(cmd!, [...args, 'system', 'cluster-agent', '--idle-exit', '0'], { stdio: 'ignore' });
    const code = await new Promise((resolve) => second.once('exit', resolve));
    expect(code).toBe(0);
    expect(await agentStatus(r.layout)).toMatchObject({ pid: agent.pid });
    // Still started only once.
    expect(await ensureAgent(r.layout, { berth: r.berth() })).toMatchObject({ pid: agent.pid, started: false });
  });

  it('killed with SIGKILL: its lease and keys go after the TTL, and the next ensureAgent starts a new one', async () => {
    const r = await newRoot();
    const store = client();
    const agent = await ensureAgent(r.layout, { berth: r.berth(), ttl: TTL, idleExitSeconds: 0 });
    const id = await hostIdOf(r);
    const reg = await eventually('the registration', () => store.get(keys.host(id)));
    const endpointKey = `/agent-test/${id}/endpoint`;
    await store.put(endpointKey, 'x', { lease: reg.lease });
    process.kill(agent.pid, 'SIGKILL');
    await eventually('the keys to go with the lease', async () => (await store.get(keys.host(id))) === undefined && (await store.get(endpointKey)) === undefined);
    expect(existsSync(clusterPaths(r.layout).agentPid)).toBe(true);
    expect(await agentStatus(r.layout)).toBeUndefined();

    const next = await ensureAgent(r.layout, { berth: r.berth(), ttl: TTL, idleExitSeconds: 0 });
    expect(next.started).toBe(true);
    expect(next.pid).not.toBe(agent.pid);
    const again = await eventually('the host registered again', () => store.get(keys.host(id)));
    expect(again.lease).not.toBe(reg.lease);
  });

  it('starts one agent when two commands ensure it at once', async () => {
    const r = await newRoot();
    const settings = { berth: r.berth(), ttl: TTL, idleExitSeconds: 0 };
    const [a, b] = await Promise.all([ensureAgent(r.layout, settings), ensureAgent(r.layout, settings)]);
    expect(a.pid).toBe(b.pid);
    await eventually('the loser to exit', () => processesOf(r.root).length === 1);
    expect(processesOf(r.root)).toEqual([a.pid]);
  });

  it('exits by itself when idle and revokes its lease', async () => {
    const r = await newRoot();
    const store = client();
    await ensureAgent(r.layout, { berth: r.berth(), ttl: 30, idleExitSeconds: 1 });
    const id = await hostIdOf(r);
    await eventually('the registration', () => store.get(keys.host(id)));
    await eventually('the agent to exit', async () => (await agentStatus(r.layout)) === undefined && processesOf(r.root).length === 0);
    // Revoked, not left to run out its 30 s.
    expect(await store.get(keys.host(id))).toBeUndefined();
    expect(existsSync(clusterPaths(r.layout).agentPid)).toBe(false);
    expect(existsSync(clusterPaths(r.layout).leaseFile)).toBe(false);
    expect(readFileSync(clusterPaths(r.layout).agentLog, 'utf8')).toMatch(/exits \(idle\)/);
  });

  it('stopAgent leaves no process and no pidfile, and never signals a pid that is not the agent', async () => {
    const r = await newRoot();
    const agent = await ensureAgent(r.layout, { berth: r.berth(), ttl: TTL, idleExitSeconds: 0 });
    expect(await stopAgent(r.layout)).toBe(true);
    expect(processesOf(r.root)).toEqual([]);
    expect(existsSync(clusterPaths(r.layout).agentPid)).toBe(false);
    expect(await stopAgent(r.layout)).toBe(false);
    expect(agent.pid).toBeGreaterThan(0);

    // A stale pidfile whose pid is now another process (this test's own, with another start time).
    await writeFile(clusterPaths(r.layout).agentPid, `${process.pid} 1`);
    expect(await stopAgent(r.layout)).toBe(false);
    expect(existsSync(clusterPaths(r.layout).agentPid)).toBe(false);
  });

  it('says where the log is when the agent cannot start', async () => {
    const r = await newRoot();
    const bad = [process.execPath, BIN, '--root', r.root, '--runroot', r.layout.runroot];
    // No cluster store: the agent refuses to run.
    await expect(ensureAgent(r.layout, { berth: bad })).rejects.toThrow(/the cluster agent exited with code [1-9]\d* as it started/);
    await expect(ensureAgent(r.layout, { berth: bad })).rejects.toMatchObject({ hint: `see its log, ${clusterPaths(r.layout).agentLog}` });
    expect(readFileSync(clusterPaths(r.layout).agentLog, 'utf8')).toMatch(/cluster store/);
    // Times are checked before anything starts.
    await expect(ensureAgent(r.layout, { berth: r.berth(), ttl: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: '--ttl' });
    await expect(ensureAgent(r.layout, { berth: r.berth(), idleExitSeconds: -1 })).rejects.toMatchObject({ field: '--idle-exit' });
    expect(processesOf(r.root)).toEqual([]);
  });
});
