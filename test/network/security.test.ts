/**
 * Issue 8, network items: what a container or a neighbour must not reach, and what Berth must not delete.
 * Traffic goes only to 127.0.0.1, to sandboxes these tests make, and to a neighbour netns of their own.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { run } from '../../src/util/exec.js';
import { attachReq, destroyEnv, inNetns, makeEnv, newId, spawnInNetns, type NetEnv } from './helpers.js';

const envs: NetEnv[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const c of cleanups.splice(0).reverse()) await c().catch((e) => errors.push(e));
  for (const e of envs.splice(0)) await destroyEnv(e).catch((err) => errors.push(err));
  if (errors.length) throw new AggregateError(errors, 'cleanup failed');
});

async function env(n: number): Promise<NetEnv> {
  const e = await makeEnv(n);
  envs.push(e);
  return e;
}

async function startHttpd(e: NetEnv, netns: string, port: number, text: string): Promise<void> {
  const dir = path.join(e.root, `www-${port}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.html'), text);
  spawnInNetns(e, netns, ['busybox', 'httpd', '-f', '-p', String(port), '-h', dir]);
}

/** `wget` from inside a netns; the body, or '' when nothing answered. Retried while the server starts. */
async function fetchFrom(netns: string, url: string, tries = 1): Promise<string> {
  for (let i = 0; ; i++) {
    const r = await inNetns(netns, ['timeout', '3', 'busybox', 'wget', '-q', '-O', '-', url]);
    if (r.code === 0 || i + 1 >= tries) return r.code === 0 ? r.out : '';
    await new Promise((res) => setTimeout(res, 100));
  }
}

function listenLocal(port: number, text: string): Promise<net.Server> {
  const srv = net.createServer((s) => s.end(text));
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

describe('host loopback (CVE-2020-8558 class)', () => {
  it('keeps unpublished 127.0.0.1 services away from containers and 127.0.0.1 publishing working', async () => {
    const e = await env(40);
    await e.mgr.create({ name: 'lo', subnets: [e.subnet(0)], options: { 'com.docker.network.bridge.name': e.bridge('l') } });
    const id = newId();
    const st = await attachReq(e.mgr, { id, name: 'c', hostname: 'c', exposedPorts: [], request: { networks: ['lo'], publish: ['127.0.0.1:18600:80'] } });
    await e.noteInterfaces();
    await startHttpd(e, st.netnsPath!, 80, 'published');
    const secret = await listenLocal(18601, 'host-secret\n');
    cleanups.push(() => new Promise((r) => secret.close(r)));

    // The published port keeps working from the host's 127.0.0.1.
    expect(await fetchFrom(`/proc/${process.pid}/ns/net`, 'http://127.0.0.1:18600/', 40)).toBe('published');

    // The container sends to 127.0.0.1 through its eth0, as a raw socket could: local table moved behind
    // a rule that routes 127.0.0.1 via the gateway, route_localnet so its own kernel lets that out and in.
    const gw = st.endpoints[0]!.gateway!;
    const script = [
      'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet',
      'ip rule add pref 100 lookup local', 'ip rule del pref 0',
      `ip route add 127.0.0.1/32 via ${gw} dev eth0 table 200`, 'ip rule add pref 10 to 127.0.0.1/32 lookup 200',
      'timeout 4 busybox nc 127.0.0.1 18601 </dev/null',
    ].join(' && ');
    const probe = await inNetns(st.netnsPath!, ['sh', '-c', script]);
    expect(probe.out).not.toContain('host-secret');
    // ... and it was Berth's drop that stopped it (the SYN did arrive on the bridge).
    const counted = (await run('iptables-save', ['-c', '-t', 'raw'])).stdout.split('\n')
      .filter((l) => l.includes(`-i ${e.bridge('l')}`) && l.includes('-d 127.0.0.0/8') && l.endsWith('-j DROP'));
    expect(counted).toHaveLength(1);
    expect(Number(/^\[(\d+):/.exec(counted[0]!)?.[1])).toBeGreaterThan(0);
    await e.mgr.detach(id);
  });
});

describe('forwarding from a neighbour that routes the bridge subnet through this host', () => {
  it('reaches published ports only, never a container port directly', async () => {
    const e = await env(41);
    await e.mgr.create({ name: 'fw', subnets: [e.subnet(0)], options: { 'com.docker.network.bridge.name': e.bridge('f') } });
    const id = newId();
    const st = await attachReq(e.mgr, { id, name: 'c', hostname: 'c', exposedPorts: [], request: { networks: ['fw'], publish: ['18602:80', '127.0.0.1:18603:82'] } });
    await e.noteInterfaces();
    await startHttpd(e, st.netnsPath!, 80, 'published');
    await startHttpd(e, st.netnsPath!, 81, 'unpublished');
    await startHttpd(e, st.netnsPath!, 82, 'local-only');
    const ctr = st.endpoints[0]!.ipv4!;

    const ns = 'berthA-41nb';
    const [hostEnd, nbEnd] = ['berthA41h', 'berthA41n'];
    cleanups.push(() => run('ip', ['netns', 'del', ns]).catch(() => {}));
    cleanups.push(() => run('ip', ['link', 'del', hostEnd]).catch(() => {}));
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nbEnd, 'netns', ns]);
    await run('ip', ['addr', 'add', '10.241.41.1/30', 'dev', hostEnd]);
    await run('ip', ['link', 'set', hostEnd, 'up']);
    for (const cmd of [['addr', 'add', '10.241.41.2/30', 'dev', nbEnd], ['link', 'set', nbEnd, 'up'], ['link', 'set', 'lo', 'up'],
      ['route', 'add', e.subnet(0), 'via', '10.241.41.1']]) await run('ip', ['-n', ns, ...cmd]);
    const nb = `/run/netns/${ns}`;

    // Control first: the neighbour's path through the host works for a published port.
    expect(await fetchFrom(nb, 'http://10.241.41.1:18602/', 40)).toBe('published');
    expect(await fetchFrom(nb, `http://${ctr}:81/`)).toBe('');
    expect(await fetchFrom(nb, `http://${ctr}:80/`)).toBe('');
    // A port published on 127.0.0.1 only is not a port for the neighbour either.
    expect(await fetchFrom(nb, `http://${ctr}:82/`)).toBe('');
    expect(await fetchFrom(nb, 'http://10.241.41.1:18603/')).toBe('');
    await e.mgr.detach(id);
  });
});

describe('bridges Berth did not create', () => {
  it('refuses the bridge of another root, which keeps working', async () => {
    const [a, b] = [await env(42), await env(43)];
    const theirs = a.bridge('a');
    await a.mgr.create({ name: 'home', subnets: [a.subnet(0)], options: { 'com.docker.network.bridge.name': theirs } });
    const id = newId();
    const st = await attachReq(a.mgr, { id, name: 'a1', hostname: 'a1', exposedPorts: [], request: { networks: ['home'] } });
    await a.noteInterfaces();
    const err = await b.mgr.create({ name: 'squat', subnets: [b.subnet(0)], options: { 'com.docker.network.bridge.name': theirs } }).catch((x: unknown) => x);
    // Whatever root B did (refuse, or adopt and later remove), root A's bridge must survive it.
    if (!(err instanceof Error)) await b.mgr.remove('squat');
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/another Berth network/);
    expect(existsSync(`/sys/class/net/${theirs}`)).toBe(true);
    expect((await inNetns(st.netnsPath!, ['busybox', 'ping', '-c1', '-W2', st.endpoints[0]!.gateway!])).code).toBe(0);
    expect((await b.mgr.list()).map((n) => n.name)).not.toContain('squat');
    await a.mgr.detach(id);
  });

  it('adopts an existing bridge and leaves it behind on network rm', async () => {
    const b = await env(44);
    const adopted = 'berthA44x';
    cleanups.push(() => run('ip', ['link', 'del', adopted]).catch(() => {}));
    await run('ip', ['link', 'add', adopted, 'type', 'bridge']);
    await run('ip', ['link', 'set', adopted, 'up']);
    await b.mgr.create({ name: 'adopt', subnets: [b.subnet(0)], options: { 'com.docker.network.bridge.name': adopted } });
    const id = newId();
    const st = await attachReq(b.mgr, { id, name: 'b1', hostname: 'b1', exposedPorts: [], request: { networks: ['adopt'] } });
    await b.noteInterfaces();
    expect((await inNetns(st.netnsPath!, ['busybox', 'ping', '-c1', '-W2', st.endpoints[0]!.gateway!])).code).toBe(0);
    await b.mgr.detach(id);
    await b.mgr.remove('adopt');
    expect(existsSync(`/sys/class/net/${adopted}`)).toBe(true);
    // The gateway address Berth added is Berth's, and goes with the network.
    expect((await run('ip', ['-o', 'addr', 'show', 'dev', adopted])).stdout).not.toContain(st.endpoints[0]!.gateway!);
  });

  it('refuses an existing link that is not a bridge', async () => {
    const b = await env(45);
    const veth = 'berthA45v';
    cleanups.push(() => run('ip', ['link', 'del', veth]).catch(() => {}));
    await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'berthA45w']);
    await expect(b.mgr.create({ name: 'nope', subnets: [b.subnet(0)], options: { 'com.docker.network.bridge.name': veth } }))
      .rejects.toThrow(/not a bridge/);
    expect(existsSync(`/sys/class/net/${veth}`)).toBe(true);
    expect((await b.mgr.list()).map((n) => n.name)).not.toContain('nope');
  });
});
