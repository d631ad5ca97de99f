/**
 * The etcd ClusterStore against a real etcd (Debian's etcd-server) on 127.0.0.1: every operation, leases that
 * expire, watches across an etcd restart, compaction, and the typed errors when etcd is away (no hang).
 */
import { describe, expect, it } from 'vitest';
import type { ClusterStore, LeaseId, WatchEvent } from '../../src/cluster/store.js';
import { ClusterStoreError, ClusterUnavailableError, isAlreadyGone } from '../../src/errors.js';
import { etcdForFile, freePort } from '../helpers/etcd.js';

const cluster = etcdForFile();

function open(uri?: string, timeoutMs = 3000): ClusterStore {
  return cluster.client({ uri, timeoutMs, watchRetryMaxMs: 300 });
}

/** Reads `n` events from a watch (or fewer if it ends). */
async function take(it: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe('EtcdStore against a real etcd', () => {
  it('gets, lists, puts and deletes keys', async () => {
    const s = open();
    expect(await s.get('/t1/missing')).toBeUndefined();
    const rev = await s.put('/t1/a', 'one');
    await s.put('/t1/b', 'two');
    await s.put('/t1b/c', 'not under /t1/');
    const a = await s.get('/t1/a');
    expect(a).toMatchObject({ key: '/t1/a', value: 'one', modRevision: rev, createRevision: rev });
    const l = await s.list('/t1/');
    expect(l.kvs.map((kv) => [kv.key, kv.value])).toEqual([['/t1/a', 'one'], ['/t1/b', 'two']]);
    expect(l.revision).toBeGreaterThanOrEqual(rev + 1);
    // Values are any UTF-8 text, empty included.
    await s.put('/t1/u', 'é ✓ "json"\n');
    expect((await s.get('/t1/u'))?.value).toBe('é ✓ "json"\n');
    await s.put('/t1/e', '');
    expect((await s.get('/t1/e'))?.value).toBe('');
    expect(await s.delete('/t1/a')).toBe(true);
    expect(await s.delete('/t1/a')).toBe(false);
    expect(await s.deletePrefix('/t1/')).toBe(3);
    expect((await s.list('/t1/')).kvs).toEqual([]);
    expect((await s.get('/t1b/c'))?.value).toBe('not under /t1/');
    await expect(s.deletePrefix('')).rejects.toThrow(/empty prefix/);
  });

  it('creates only absent keys, atomically, one or several', async () => {
    const s = open();
    expect(await s.create('/t2/k', 'first')).toBe(true);
    expect(await s.create('/t2/k', 'second')).toBe(false);
    expect((await s.get('/t2/k'))?.value).toBe('first');
    // All or none: one key exists, so nothing is written.
    expect(await s.createAll([{ key: '/t2/x', value: '1' }, { key: '/t2/k', value: '2' }])).toBe(false);
    expect(await s.get('/t2/x')).toBeUndefined();
    expect(await s.createAll([{ key: '/t2/x', value: '1' }, { key: '/t2/y', value: '2' }])).toBe(true);
    expect((await s.list('/t2/')).kvs.map((kv) => kv.key)).toEqual(['/t2/k', '/t2/x', '/t2/y']);
  });

  it('compares and swaps on modRevision; deletes on modRevision or value', async () => {
    const s = open();
    await s.put('/t3/k', 'v1');
    const kv = (await s.get('/t3/k'))!;
    expect(await s.compareAndSwap('/t3/k', kv.modRevision, 'v2')).toBe(true);
    // A second writer that read the same revision loses.
    expect(await s.compareAndSwap('/t3/k', kv.modRevision, 'v3')).toBe(false);
    expect((await s.get('/t3/k'))?.value).toBe('v2');
    const now = (await s.get('/t3/k'))!;
    expect(await s.delete('/t3/k', { ifModRevision: kv.modRevision })).toBe(false);
    expect(await s.delete('/t3/k', { ifValue: 'someone else' })).toBe(false);
    expect(await s.get('/t3/k')).toBeDefined();
    expect(await s.delete('/t3/k', { ifModRevision: now.modRevision, ifValue: 'v2' })).toBe(true);
    expect(await s.get('/t3/k')).toBeUndefined();
  });

  it('keeps keys under a lease while it is kept alive; they go when it expires or is revoked', async () => {
    const s = open();
    const short = await s.grantLease(2);
    await s.put('/t4/short', 'x', { lease: short });
    expect(await s.create('/t4/short-created', 'y', { lease: short })).toBe(true);
    expect((await s.get('/t4/short'))?.lease).toBe(short);
    expect(await s.keepAliveOnce(short)).toBeGreaterThan(0);
    // Not kept alive any more: etcd expires it and deletes its keys.
    for (let i = 0; i < 100 && (await s.list('/t4/short')).kvs.length; i++) await new Promise((r) => setTimeout(r, 200));
    expect((await s.list('/t4/short')).kvs).toEqual([]);
    expect(await s.keepAliveOnce(short)).toBe(0);
    // A write under a lease that is gone is a typed error, which teardown counts as already gone.
    const err = await s.put('/t4/late', 'z', { lease: short }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterStoreError);
    expect((err as ClusterStoreError).reason).toBe('lease-not-found');
    expect(isAlreadyGone(err)).toBe(true);

    const revoked = await s.grantLease(60);
    await s.put('/t4/revoked', 'x', { lease: revoked });
    await s.revokeLease(revoked);
    expect(await s.get('/t4/revoked')).toBeUndefined();
    await expect(s.revokeLease(revoked)).rejects.toMatchObject({ reason: 'lease-not-found' });
    await expect(s.revokeLease('123' as LeaseId)).rejects.toBeInstanceOf(ClusterStoreError);
    await expect(s.grantLease(0)).rejects.toThrow(/TTL/);
  });

  it('watches puts and deletes from a revision, and goes on after an etcd restart', async () => {
    const s = open();
    const before = await s.list('/t5/');
    await s.put('/t5/a', '1');
    const w = s.watch('/t5/', { fromRevision: before.revision + 1 });
    const it = w[Symbol.asyncIterator]();
    await s.put('/t5/b', '2');
    await s.delete('/t5/a');
    await s.put('/t5x', 'not under the prefix');
    const first = await take(it, 3);
    expect(first.map((e) => e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : e.type === 'delete' ? `delete ${e.key}` : e.type))
      .toEqual(['put /t5/a=1', 'put /t5/b=2', 'delete /t5/a']);

    // etcd goes away and comes back: the watch reconnects from after the last event it delivered,
    // so a change made while it was away is seen once, and nothing is seen twice.
    await cluster.etcd.kill();
    await cluster.etcd.restart();
    await s.put('/t5/c', '3');
    await s.put('/t5/d', '4');
    const after = await take(it, 2);
    expect(after.map((e) => e.type === 'put' ? e.kv.key : e.type)).toEqual(['/t5/c', '/t5/d']);
    w.close();
    expect((await it.next()).done).toBe(true);
  });

  it('tells the watcher to re-list when its revisions were compacted', async () => {
    const s = open();
    const start = await s.put('/t6/a', '1');
    await s.put('/t6/a', '2');
    const last = await s.put('/t6/a', '3');
    cluster.etcd.ctl(['compaction', String(last)]);
    const w = s.watch('/t6/', { fromRevision: start });
    const evs = await take(w[Symbol.asyncIterator](), 2);
    expect(evs).toEqual([{ type: 'compacted', compactRevision: last }]);
  });

  it('a watch from now on sees only later changes', async () => {
    const s = open();
    await s.put('/t7/old', 'x');
    const w = s.watch('/t7/');
    const it = w[Symbol.asyncIterator]();
    // The watch is created asynchronously; a change is seen once it is set up, so write until one arrives.
    const got = it.next();
    let seen: IteratorResult<WatchEvent> | undefined;
    for (let i = 0; i < 50 && !seen; i++) {
      await s.put('/t7/new', String(i));
      seen = await Promise.race([got, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
    }
    expect(seen?.value).toMatchObject({ type: 'put', kv: { key: '/t7/new' } });
    w.close();
  });

  it('fails with ClusterUnavailableError, naming the endpoints, when no endpoint answers (no hang)', async () => {
    const deadPort = await freePort();
    const s = open(`etcd://127.0.0.1:${deadPort}`, 1000);
    const err = await s.get('/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterUnavailableError);
    expect((err as Error).message).toContain(`http://127.0.0.1:${deadPort}`);
    expect((err as ClusterUnavailableError).hint).toMatch(/etcd/);
    // A listener that accepts and never answers: the deadline ends the call.
    const net = await import('node:net');
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as import('node:net').AddressInfo).port;
      const mute = open(`etcd://127.0.0.1:${port}`, 500);
      await expect(mute.get('/x')).rejects.toBeInstanceOf(ClusterUnavailableError);
      const change = await mute.put('/x', 'y').catch((e: unknown) => e);
      expect(change).toBeInstanceOf(ClusterUnavailableError);
      expect((change as ClusterUnavailableError).outcomeUnknown).toBe(true);
    } finally {
      silent.close();
    }
  });

  it('on UNAVAILABLE (no leader, or a timed-out request) sends a read to the next member, never a change', async () => {
    // A member without a leader: what etcd's gateway answers then (gRPC code 14). A single etcd cannot
    // be made to lose its leader, so this one member is a stand-in on 127.0.0.1.
    const http = await import('node:http');
    const leaderless = http.createServer((req, res) => {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}');
    });
    await new Promise<void>((r) => leaderless.listen(0, '127.0.0.1', r));
    try {
      const port = (leaderless.address() as import('node:net').AddressInfo).port;
      const s = open(`etcd://127.0.0.1:${port},${cluster.etcd.host}:${cluster.etcd.port}`);
      await open().put('/t9/k', 'v');
      expect((await s.get('/t9/k'))?.value).toBe('v');
      const fresh = open(`etcd://127.0.0.1:${port},${cluster.etcd.host}:${cluster.etcd.port}`);
      const err = await fresh.create('/t9/new', 'x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClusterUnavailableError);
      expect((err as ClusterUnavailableError).outcomeUnknown).toBe(true);
      expect(await open().get('/t9/new')).toBeUndefined();
    } finally {
      leaderless.close();
    }
  });

  it('tries the next endpoint when one is down', async () => {
    const deadPort = await freePort();
    const s = open(`etcd://127.0.0.1:${deadPort},${cluster.etcd.host}:${cluster.etcd.port}`);
    await s.put('/t8/k', 'v');
    expect((await s.get('/t8/k'))?.value).toBe('v');
    // etcd itself stopped: every endpoint fails, and the error says so.
    await cluster.etcd.kill();
    try {
      const err = await s.get('/t8/k').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClusterUnavailableError);
      expect((err as ClusterUnavailableError).endpoints).toEqual([`http://127.0.0.1:${deadPort}`, cluster.etcd.url]);
    } finally {
      await cluster.etcd.restart();
    }
  });
});
