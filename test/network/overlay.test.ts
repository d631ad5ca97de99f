import { existsSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import type { TestEtcd } from '../helpers/etcd.js';
import type { Hosts } from '../helpers/hosts.js';
import type { Host } from '../helpers/hosts.js';
import { ipOf, removeCluster, startCluster, type Member } from '../helpers/cluster.js';

/**
 * Issue 17: an overlay network shared by hosts through etcd. Hosts are network namespaces on an underlay
 * bridge (helpers/hosts.ts); etcd runs in the underlay's namespace; each host's Berth has its own root.
 */

let hosts: Hosts | undefined;
let etcd: TestEtcd | undefined;
afterEach(async () => {
  const [h, e] = [hosts, etcd];
  hosts = undefined;
  etcd = undefined;
  await removeCluster(h, e);
});


/** Retries `check` until it passes or `ms` went by (the agent acts on a watch event, not at once). */
async function eventually(check: () => Promise<void>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}


/** A cluster of `n` hosts, removed after the test. */
async function start(n: number, opts: { mtu?: number } = {}): Promise<Member[]> {
  const cluster = await startCluster(n, opts);
  hosts = cluster.hosts;
  etcd = cluster.etcd;
  return cluster.members;
}

/** A command inside a host's overlay netns of `network` (drivers/overlay.ts: the bridge and VXLAN device live there). */
async function inOverlay(m: Member, network: string, cmd: string[]) {
  const id = await m.ok('network', 'inspect', '-f', '{{.Id}}', network);
  return inNetns(m, overlayNetns(m.host, id), cmd);
}

const overlayNetns = (h: Host, networkId: string) => `${h.runroot}/netns/.overlay/${networkId}`;
const inNetns = (m: Member, netns: string, cmd: string[]) => m.host.exec(['nsenter', `--net=${netns}`, ...cmd]);
const hostLinks = async (m: Member) => (await m.host.exec(['ip', '-o', '-d', 'link', 'show'])).stdout;

describe('overlay networks', () => {
  test('made on one host, seen on the other; containers on two hosts reach each other by address and by name', async () => {
    const [a, b] = (await start(2)) as [Member, Member];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.70.0.0/24', 'ovl');
    expect(await b.ok('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).toContain('ovl overlay global');

    await a.ok('run', '-d', '--name', 'alpha', '--network', 'ovl', 'busybox', 'sleep', '1d');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'ovl', 'busybox', 'sleep', '1d');
    const ipA = await ipOf(a, 'alpha', 'ovl');
    const ipB = await ipOf(b, 'beta', 'ovl');
    expect(ipA).not.toBe(ipB);
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', ipA)).toContain('1 packets received');
    expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W3', ipB)).toContain('1 packets received');
    // Names: each host's name server holds the other hosts' containers too (the agent follows them).
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', 'alpha')).toContain(ipA);

    // The network's hosts, as Docker's overlay shows its peers.
    const peers = JSON.parse(await a.ok('network', 'inspect', '-f', '{{json .Peers}}', 'ovl')) as { IP: string }[];
    expect(peers.map((p) => p.IP).sort()).toEqual(hosts!.hosts.map((h) => h.address).sort());
    expect(await b.ok('network', 'inspect', '-f', '{{.Scope}} {{.Attachable}}', 'ovl')).toBe('global true');
    // Out of the network through its own host (masquerade): alpha reaches host b's underlay address.
    expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W3', hosts!.hosts[1]!.address)).toContain('1 packets received');
    // A host's VXLAN device lost (or its entries flushed): network reload makes it again from the store.
    await inOverlay(b, 'ovl', ['ip', 'link', 'del', 'berthvx4096']);
    expect((await b.run('exec', 'beta', 'ping', '-c1', '-W1', ipA)).exitCode).not.toBe(0);
    await b.ok('network', 'reload', '--all');
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', ipA)).toContain('1 packets received');

    // A container that comes after: the other host's agent sees its registration and adds its entries and name.
    await a.ok('run', '-d', '--name', 'gamma', '--network', 'ovl', '--network-alias', 'g', 'busybox', 'sleep', '1d');
    const ipG = await ipOf(a, 'gamma', 'ovl');
    await eventually(async () => expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W2', 'g')).toContain(ipG));
    // One that goes: its name and entries go on the other host too.
    await a.ok('rm', '-f', 'gamma');
    await eventually(async () => expect((await b.run('exec', 'beta', 'ping', '-c1', '-W1', ipG)).exitCode).not.toBe(0));
    await eventually(async () => expect((await b.run('exec', 'beta', 'nslookup', 'gamma')).stdout).not.toContain(ipG));

    // Teardown in the order a user would: containers, then the network (from either host).
    await a.ok('rm', '-f', 'alpha');
    await b.ok('rm', '-f', 'beta');
    await b.ok('network', 'rm', 'ovl');
    expect(await a.ok('network', 'ls', '--format', '{{.Name}}')).not.toContain('ovl');
  }, 180_000);

  test('two overlays are isolated; 20 containers over three hosts get distinct addresses; MTU is the underlay\'s less 50', async () => {
    const m = await start(3, { mtu: 1400 });
    const [a, b, c] = m as [Member, Member, Member];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.71.0.0/24', 'red');
    await b.ok('network', 'create', '-d', 'overlay', '--internal', '--subnet', '10.72.0.0/24', 'blue');
    // 20 containers at once, spread over the hosts, all on red.
    const names = Array.from({ length: 20 }, (_, i) => `r${i}`);
    await Promise.all(names.map((n, i) => m[i % 3]!.ok('run', '-d', '--name', n, '--network', 'red', 'busybox', 'sleep', '1d')));
    const ips = await Promise.all(names.map((n, i) => ipOf(m[i % 3]!, n, 'red')));
    expect(new Set(ips).size).toBe(20);
    for (const ip of ips) expect(ip).toMatch(/^10\.71\.0\.\d+$/);
    expect(await a.ok('exec', 'r0', 'cat', '/sys/class/net/eth0/mtu')).toBe('1350');
    // blue on b and c: reaches its own, never red's (another VNI, another bridge).
    await b.ok('run', '-d', '--name', 'b1', '--network', 'blue', 'busybox', 'sleep', '1d');
    await c.ok('run', '-d', '--name', 'b2', '--network', 'blue', 'busybox', 'sleep', '1d');
    expect(await b.ok('exec', 'b1', 'ping', '-c1', '-W3', 'b2')).toContain('1 packets received');
    expect((await b.run('exec', 'b1', 'ping', '-c1', '-W2', ips[1]!)).exitCode).not.toBe(0); // r1 is on b, same host
    expect((await b.run('exec', 'b1', 'ping', '-c1', '-W2', ips[2]!)).exitCode).not.toBe(0); // r2 is on c
    expect((await c.run('exec', 'r2', 'ping', '-c1', '-W2', 'b2')).exitCode).not.toBe(0);
    // blue is --internal: its overlay netns has no link to the host (red's has), so nothing routes in or out.
    const [redId, blueId] = [await b.ok('network', 'inspect', '-f', '{{.Id}}', 'red'), await b.ok('network', 'inspect', '-f', '{{.Id}}', 'blue')];
    expect(await hostLinks(b)).toContain(`berth${redId.slice(0, 10)}`);
    expect(await hostLinks(b)).not.toContain(`berth${blueId.slice(0, 10)}`);
    expect((await b.run('exec', 'b1', 'ping', '-c1', '-W2', c.host.address)).exitCode).not.toBe(0);
    // The encrypted option of Docker's overlay is refused by name, nothing published.
    const enc = await a.run('network', 'create', '-d', 'overlay', '-o', 'encrypted', 'sec');
    expect(enc.exitCode).toBe(1);
    expect(enc.stderr).toMatch(/encrypted overlay networks are not supported/);
    expect(await c.ok('network', 'ls', '--format', '{{.Name}}')).not.toContain('sec');
    for (const [i, n] of names.entries()) await m[i % 3]!.ok('rm', '-f', n);
    await b.ok('rm', '-f', 'b1');
    await c.ok('rm', '-f', 'b2');
    await c.ok('network', 'rm', 'red', 'blue');
  }, 300_000);

  test('etcd stopped: a new container on the overlay is refused clearly, running ones keep talking; a dead host\'s entries go', async () => {
    const [a, b] = (await start(2)) as [Member, Member];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.73.0.0/24', 'ovl');
    await a.ok('run', '-d', '--name', 'alpha', '--network', 'ovl', 'busybox', 'sleep', '1d');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'ovl', 'busybox', 'sleep', '1d');
    const ipA = await ipOf(a, 'alpha', 'ovl');
    const ipB = await ipOf(b, 'beta', 'ovl');

    await etcd!.kill();
    const refused = await a.run('run', '-d', '--name', 'late', '--network', 'ovl', 'busybox', 'sleep', '1d');
    expect(refused.exitCode).toBe(125);
    expect(refused.stderr).toMatch(/cluster store|etcd/i);
    // As docker run: the container was created and stays so (its start failed); nothing of its network was made.
    expect(await a.ok('ps', '-a', '--filter', 'name=late', '--format', '{{.State}}')).toBe('created');
    const lateId = await a.ok('inspect', '-f', '{{.Id}}', 'late');
    expect((await hosts!.hosts[0]!.exec(['ls', `${hosts!.hosts[0]!.runroot}/net/sandboxes`])).stdout).not.toContain(lateId);
    await a.ok('rm', 'late');
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', ipA)).toContain('1 packets received');
    // Local networks are untouched by the outage.
    expect(await a.ok('run', '--rm', 'busybox', 'echo', 'local')).toBe('local');
    await etcd!.restart();

    expect((await inOverlay(a, 'ovl', ['ip', 'neigh', 'show', 'dev', 'berthvx4096'])).stdout).toContain(ipB);
    // Host b dies: its agent is killed and nothing renews its lease; when the lease expires, its address is
    // free again and a's entries and names for beta go.
    const pid = Number((await hosts!.hosts[1]!.exec(['cat', `${hosts!.hosts[1]!.runroot}/cluster/agent.pid`])).stdout.split(' ')[0]);
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGKILL');
    await eventually(async () => expect(etcd!.ctl(['get', '--prefix', '--keys-only', '/berth/v1/networks/'])).not.toContain(`/ipam/${ipB}`), 40_000);
    await eventually(async () => expect((await a.run('exec', 'alpha', 'nslookup', 'beta')).stdout).not.toContain(ipB), 20_000);
    // The VXLAN device's own entries (where a MAC lives, the ARP proxy's neighbour) are the ones Berth keeps.
    const mac = (await b.ok('inspect', '-f', '{{(index .NetworkSettings.Networks "ovl").MacAddress}}', 'beta')).trim();
    const remoteEntries = async () => {
      const fdb = (await inOverlay(a, 'ovl', ['bridge', 'fdb', 'show', 'dev', 'berthvx4096'])).stdout.split('\n').filter((l) => l.includes(' dst '));
      const neigh = (await inOverlay(a, 'ovl', ['ip', 'neigh', 'show', 'dev', 'berthvx4096'])).stdout;
      return { fdb: fdb.join('\n'), neigh };
    };
    await eventually(async () => {
      const now = await remoteEntries();
      expect(now.fdb).not.toContain(mac);
      expect(now.neigh).not.toContain(ipB);
    }, 20_000);
    // Host b comes back: a reload takes a new lease, puts its endpoint and address back and starts its agent.
    await b.ok('network', 'reload', '--all');
    await eventually(async () => expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W2', 'beta')).toContain(ipB));
    expect(etcd!.ctl(['get', '--prefix', '--keys-only', '/berth/v1/networks/'])).toContain(`/ipam/${ipB}`);
    await a.ok('rm', '-f', 'alpha');
    await b.ok('rm', '-f', 'beta');
    await a.ok('network', 'rm', 'ovl');
  }, 300_000);

  test('a port published by a container on an overlay answers on its own host', async () => {
    const [a, b] = (await start(2)) as [Member, Member];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.74.0.0/24', 'web');
    await b.ok('run', '-d', '--name', 'site', '--network', 'web', '-p', '8080:80', 'busybox', 'sh', '-c',
      'mkdir /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www');
    const h2 = hosts!.hosts[1]!;
    const get = (from: typeof h2, url: string) => from.exec(['timeout', '10', 'busybox', 'wget', '-q', '-O-', url]);
    await eventually(async () => expect((await get(hosts!.hosts[0]!, `http://${h2.address}:8080/`)).stdout.trim()).toBe('served'));
    expect((await get(h2, `http://${h2.address}:8080/`)).stdout.trim()).toBe('served');
    await b.ok('rm', '-f', 'site');
    await a.ok('network', 'rm', 'web');
  }, 120_000);
});

/**
 * Issue 17's throughput point: on each host with a container on it, an overlay network has a netns of
 * Berth's own holding its bridge and VXLAN device, with br_netfilter off there (drivers/overlay.ts), and a
 * veth to the host for egress and published ports.
 */
describe('overlay netns', () => {
  test('bridge and VXLAN device live in the overlay\'s own netns with br_netfilter off; egress and -p go through its link to the host; it goes with the last endpoint', async () => {
    const [a, b] = (await start(2)) as [Member, Member];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.76.0.0/24', 'ovl');
    const id = await a.ok('network', 'inspect', '-f', '{{.Id}}', 'ovl');
    await a.ok('run', '-d', '--name', 'alpha', '--network', 'ovl', '-p', '8081:80', 'busybox', 'sh', '-c',
      'mkdir /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'ovl', 'busybox', 'sleep', '1d');
    const ns = overlayNetns(a.host, id);
    expect(existsSync(ns)).toBe(true);

    // The VXLAN device is in the overlay netns, its link (UDP socket) in the host's; both ports of br0.
    const vx = (await inNetns(a, ns, ['ip', '-d', 'link', 'show', 'berthvx4096'])).stdout;
    expect(vx).toMatch(/link-netns(id)? /);
    expect(vx).toContain('master br0');
    expect((await inNetns(a, ns, ['ip', 'link', 'show', 'master', 'br0'])).stdout).toMatch(/bv[0-9a-f]{8}/);
    for (const key of ['iptables', 'ip6tables', 'arptables']) {
      expect((await inNetns(a, ns, ['cat', `/proc/sys/net/bridge/bridge-nf-call-${key}`])).stdout.trim()).toBe('0');
    }
    // The host's netns has neither: only the veth to the overlay netns, named as a bridge network's bridge.
    const links = await hostLinks(a);
    expect(links).not.toContain('berthvx');
    expect(links).not.toMatch(/ bridge /);
    expect(links).toMatch(new RegExp(`berth${id.slice(0, 10)}@\\S+:.* veth `));

    const ipA = await ipOf(a, 'alpha', 'ovl');
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', ipA)).toContain('1 packets received');
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', 'alpha')).toContain(ipA);
    // Egress: through the overlay netns's link to its host, masqueraded there.
    expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W3', b.host.address)).toContain('1 packets received');
    // -p: from another host to this host's address, and from this host's own 127.0.0.1.
    const get = (m: Member, url: string) => m.host.exec(['timeout', '10', 'busybox', 'wget', '-q', '-O-', url]);
    expect((await get(b, `http://${a.host.address}:8081/`)).stdout.trim()).toBe('served');
    expect((await get(a, 'http://127.0.0.1:8081/')).stdout.trim()).toBe('served');

    // The last endpoint on this host takes the netns, and the host's link, with it; the other host keeps its own.
    await a.ok('rm', '-f', 'alpha');
    expect(existsSync(ns)).toBe(false);
    expect(await hostLinks(a)).not.toContain(`berth${id.slice(0, 10)}`);
    expect(existsSync(overlayNetns(b.host, id))).toBe(true);
    await b.ok('rm', '-f', 'beta');
    expect(existsSync(overlayNetns(b.host, id))).toBe(false);
    await a.ok('network', 'rm', 'ovl');
  }, 180_000);

  test('a run killed between making the overlay netns and moving the VXLAN device into it is repaired by the next command', async () => {
    const [a, b] = (await start(2)) as [Member, Member];
    await a.ok('network', 'create', '-d', 'overlay', '--subnet', '10.77.0.0/24', 'ovl');
    const id = await a.ok('network', 'inspect', '-f', '{{.Id}}', 'ovl');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'ovl', 'busybox', 'sleep', '1d');

    const flags = ['--cluster-store', etcd!.uri, '--cluster-advertise', a.host.address];
    const killed = await a.host.berth([...flags, 'run', '-d', '--name', 'k1', '--network', 'ovl', 'busybox', 'sleep', '1d'],
      { env: { BERTH_FAILPOINT: 'network.overlay.before-move' } });
    expect(killed.exitCode).not.toBe(0);
    // Where the kill left things: the netns made, the VXLAN device still in the host's netns.
    expect(existsSync(overlayNetns(a.host, id))).toBe(true);
    expect(await hostLinks(a)).toContain('berthvx4096');

    // The next command undoes the killed run, and with its only endpoint the overlay's objects on this host.
    await a.ok('ps', '-a');
    expect(existsSync(overlayNetns(a.host, id))).toBe(false);
    expect(await hostLinks(a)).not.toContain('berthvx4096');

    // And a new container on the network works across hosts.
    await a.ok('run', '-d', '--name', 'k2', '--network', 'ovl', 'busybox', 'sleep', '1d');
    expect(await a.ok('exec', 'k2', 'ping', '-c1', '-W3', 'beta')).toContain('1 packets received');
    expect(await hostLinks(a)).not.toContain('berthvx4096');
    await a.ok('rm', '-f', 'k1', 'k2');
    await b.ok('rm', '-f', 'beta');
    await a.ok('network', 'rm', 'ovl');
  }, 180_000);
});
