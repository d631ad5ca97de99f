import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import type { TestEtcd } from '../helpers/etcd.js';
import type { Host, Hosts } from '../helpers/hosts.js';
import { ipOf, removeCluster, startCluster, type Member } from '../helpers/cluster.js';

/**
 * Issue 17: flannel networks. Each host leases a subnet of the network in etcd (flannel's layout under
 * /berth/flannel/) and routes the others' subnets by VXLAN or host-gw. Hosts are network namespaces on an
 * underlay bridge (helpers/hosts.ts), etcd runs in the underlay's namespace.
 */

let hosts: Hosts | undefined;
let etcd: TestEtcd | undefined;
afterEach(async () => {
  const [h, e] = [hosts, etcd];
  hosts = undefined;
  etcd = undefined;
  await removeCluster(h, e);
});



/** Waits for what another host's agent does in the background; fails naming what never happened. */
async function until(what: string, check: () => Promise<boolean>, tries = 150): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`never happened: ${what}`);
}

/** flannel's subnet leases as etcd holds them: subnet → PublicIP. */
function leases(store: TestEtcd): Map<string, string> {
  const out = new Map<string, string>();
  const lines = store.ctl(['get', '--prefix', '/berth/flannel/']).split('\n').filter(Boolean);
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const m = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(lines[i]!);
    if (m) out.set(`${m[1]}/${m[2]}`, (JSON.parse(lines[i + 1]!) as { PublicIP: string }).PublicIP);
  }
  return out;
}

const subnet24 = (ip: string) => `${ip.split('.').slice(0, 3).join('.')}.0/24`;

async function berthRoutes(h: Host): Promise<string> {
  return (await h.exec(['ip', 'route', 'show', 'proto', '190'])).stdout;
}

describe.each(['vxlan', 'host-gw'])('flannel networks, backend %s', (backend) => {
  test('each host leases its own subnet; containers on two hosts reach each other by address and by name; a host that leaves takes its subnet and routes along', async () => {
    const cluster = await startCluster(2);
    hosts = cluster.hosts;
    etcd = cluster.etcd;
    const [a, b] = cluster.members as [Member, Member];
    await a.ok('network', 'create', '-d', 'flannel', '--subnet', '10.80.0.0/16', '-o', `backend=${backend}`, 'fl');
    expect(await b.ok('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).toContain('fl flannel global');
    const config = JSON.parse(etcd.ctl(['get', '--print-value-only', '--prefix', '/berth/flannel/'])) as { Network: string; SubnetLen: number; Backend: { Type: string } };
    expect(config).toMatchObject({ Network: '10.80.0.0/16', SubnetLen: 24, Backend: { Type: backend } });

    await a.ok('run', '-d', '--name', 'alpha', '--network', 'fl', 'busybox', 'sleep', '1d');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'fl', 'busybox', 'sleep', '1d');
    const ipA = await ipOf(a, 'alpha', 'fl');
    const ipB = await ipOf(b, 'beta', 'fl');
    // Distinct host subnets, leased in flannel's layout with each host's underlay address.
    expect(subnet24(ipA)).not.toBe(subnet24(ipB));
    const held = leases(etcd);
    expect(held.get(subnet24(ipA))).toBe(a.host.address);
    expect(held.get(subnet24(ipB))).toBe(b.host.address);
    expect(held.size).toBe(2);
    // inspect's Peers: each host with its subnet, as the store has them, from either host.
    const peers = JSON.parse(await b.ok('network', 'inspect', '-f', '{{json .Peers}}', 'fl')) as { IP: string; Subnet: string }[];
    expect(peers.map((p) => `${p.IP} ${p.Subnet}`).sort()).toEqual([`${a.host.address} ${subnet24(ipA)}`, `${b.host.address} ${subnet24(ipB)}`].sort());
    // The container's own subnet is its host's /24, with that subnet's first address as gateway.
    expect(await a.ok('exec', 'alpha', 'ip', 'route')).toContain(`default via ${subnet24(ipA).replace(/0\/24$/, '1')}`);

    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', ipA)).toContain('1 packets received');
    expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W3', ipB)).toContain('1 packets received');
    expect(await b.ok('exec', 'beta', 'ping', '-c1', '-W3', 'alpha')).toContain(ipA);
    // Out of the network through the host: the underlay has no route to 10.80/16, so only a masqueraded ping returns.
    expect(await a.ok('exec', 'alpha', 'ping', '-c1', '-W3', hosts.underlay.address)).toContain('1 packets received');
    // Another network of a host stays apart from the flannel range, on this host and across hosts.
    await a.ok('network', 'create', '--subnet', '10.99.0.0/24', 'lan');
    await a.ok('run', '-d', '--name', 'other', '--network', 'lan', 'busybox', 'sleep', '1d');
    expect((await a.run('exec', 'other', 'ping', '-c1', '-W1', ipB)).stdout).toContain('0 packets received');
    expect((await a.run('exec', 'other', 'ping', '-c1', '-W1', ipA)).stdout).toContain('0 packets received');
    await a.ok('rm', '-f', 'other');
    await a.ok('network', 'rm', 'lan');

    // A container added later on b: a's name server learns it through a's agent.
    await b.ok('run', '-d', '--name', 'gamma', '--network', 'fl', 'busybox', 'sleep', '1d');
    const ipG = await ipOf(b, 'gamma', 'fl');
    await until('alpha resolves gamma', async () => (await a.run('exec', 'alpha', 'ping', '-c1', '-W2', 'gamma')).stdout.includes(ipG));

    // b's last container goes: its subnet is released, and a's agent removes a's route to it.
    expect(await berthRoutes(a.host)).toContain(subnet24(ipB));
    await b.ok('rm', '-f', 'beta', 'gamma');
    expect([...leases(etcd).values()]).not.toContain(b.host.address);
    await until(`a's route to ${subnet24(ipB)} is removed`, async () => !(await berthRoutes(a.host)).includes(subnet24(ipB)));

    await a.ok('rm', '-f', 'alpha');
    expect(await berthRoutes(a.host)).toBe('');
    await b.ok('network', 'rm', 'fl');
    expect(etcd.ctl(['get', '--prefix', '/berth/flannel/'])).toBe('');
  }, 240_000);
});

describe('flannel: a host that dies', () => {
  test('loses its subnet with its lease, the other host drops its routes; back, it leases its subnet again and is reached', async () => {
    const cluster = await startCluster(2);
    hosts = cluster.hosts;
    etcd = cluster.etcd;
    const [a, b] = cluster.members as [Member, Member];
    await a.ok('network', 'create', '-d', 'flannel', '--subnet', '10.80.0.0/16', 'fl');
    await a.ok('run', '-d', '--name', 'alpha', '--network', 'fl', 'busybox', 'sleep', '1d');
    await b.ok('run', '-d', '--name', 'beta', '--network', 'fl', 'busybox', 'sleep', '1d');
    const ipB = await ipOf(b, 'beta', 'fl');
    expect(await berthRoutes(a.host)).toContain(subnet24(ipB));

    // b "dies": its agent, which keeps b's lease alive, is killed; its containers and kernel state stay.
    const pid = Number(readFileSync(path.join(b.host.runroot, 'cluster', 'agent.pid'), 'utf8').split(' ')[0]);
    process.kill(pid, 'SIGKILL');
    await until(`b's subnet ${subnet24(ipB)} expires with b's lease`, async () => !leases(etcd!).has(subnet24(ipB)), 400);
    await until(`a's route to ${subnet24(ipB)} is removed`, async () => !(await berthRoutes(a.host)).includes(subnet24(ipB)));

    // b comes back (its next command): the subnet its bridge holds is leased again, and a routes to it.
    await b.ok('run', '-d', '--name', 'beta2', '--network', 'fl', 'busybox', 'sleep', '1d');
    expect(leases(etcd).get(subnet24(ipB))).toBe(b.host.address);
    await until('alpha reaches beta again', async () => (await a.run('exec', 'alpha', 'ping', '-c1', '-W2', ipB)).stdout.includes('1 packets received'));

    await b.ok('rm', '-f', 'beta', 'beta2');
    await a.ok('rm', '-f', 'alpha');
    await a.ok('network', 'rm', 'fl');
  }, 240_000);
});

describe('flannel network options', () => {
  test('bad backends, subnet lengths and subnets are refused with what was wrong, and nothing is published', async () => {
    const cluster = await startCluster(1);
    hosts = cluster.hosts;
    etcd = cluster.etcd;
    const a = cluster.members[0]!;
    const refused = async (args: string[], message: RegExp) => {
      const r = await a.run('network', 'create', '-d', 'flannel', ...args, 'bad');
      expect(r.exitCode, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(message);
    };
    await refused(['--subnet', '10.80.0.0/16', '-o', 'backend=udp'], /backend=udp is not a flannel backend/);
    await refused(['--subnet', '10.80.0.0/16', '-o', 'subnet-len=31'], /subnet-len.*at most 30/);
    await refused(['--subnet', '10.80.0.0/16', '-o', 'subnet-len=12'], /subnet-len.*longer than the network's \/16/);
    await refused(['--subnet', '10.80.0.0/24', '-o', 'subnet-len=25'], /leaves room for 1 host subnet/);
    await refused(['--subnet', '10.80.0.0/16', '-o', 'mode=fast'], /no option mode/);
    await refused(['--subnet', '10.80.0.0/16', '--internal'], /cannot be --internal/);
    expect(etcd.ctl(['get', '--prefix', '/berth/'])).toBe('');
    expect(await a.ok('network', 'ls', '--format', '{{.Name}}')).not.toContain('bad');

    // host-gw with a host off this host's links (a lease put by hand; no packet is sent to it): a clear
    // error at the container's start, and this host's bridge and lease undone.
    await a.ok('network', 'create', '-d', 'flannel', '--subnet', '10.80.0.0/16', '-o', 'backend=host-gw', 'gw');
    const id = await a.ok('network', 'inspect', '-f', '{{.Id}}', 'gw');
    etcd.ctl(['put', `/berth/flannel/${id}/subnets/10.80.9.0-24`, JSON.stringify({ PublicIP: '192.0.2.5', BackendType: 'host-gw' })]);
    const r = await a.run('run', '-d', '--name', 'far', '--network', 'gw', 'busybox', 'sleep', '1d');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/not on a link of this host[\s\S]*backend=vxlan/);
    expect(leases(etcd)).toEqual(new Map([['10.80.9.0/24', '192.0.2.5']]));
    expect((await hosts.hosts[0]!.exec(['ip', '-o', 'link'])).stdout).not.toContain(`berth${id.slice(0, 10)}`);
    await a.run('rm', '-f', 'far');
    etcd.ctl(['del', `/berth/flannel/${id}/subnets/10.80.9.0-24`]);
    await a.ok('network', 'rm', 'gw');
  }, 120_000);
});
