/**
 * Cluster-wide addresses (ipam.ts) and flannel subnet leases (leases.ts) against a real etcd, each "host"
 * being a store client of its own, as separate machines would be.
 */
import { describe, expect, it } from 'vitest';
import { acquireSubnet, allocate, ensureFlannelConfig, keys, listAddresses, listSubnets, release, releaseOwner, releaseSubnet, renewSubnet } from '../../src/cluster/index.js';
import { BadStateError, InvalidArgumentError } from '../../src/errors.js';
import { etcdForFile } from '../helpers/etcd.js';

const cluster = etcdForFile();
const host = () => cluster.client();

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 150 && !(await check()); i++) await new Promise((r) => setTimeout(r, 100));
}

describe('cluster IPAM', () => {
  it('gives 20 owners racing from 20 clients 20 distinct addresses, never the gateway', async () => {
    const clients = Array.from({ length: 20 }, () => host());
    const ips = await Promise.all(clients.map((s, i) => allocate(s, 'net1', '10.70.0.0/24', '10.70.0.1', `ep${i}`)));
    expect(new Set(ips).size).toBe(20);
    expect(ips).not.toContain('10.70.0.1');
    expect(ips).not.toContain('10.70.0.0');
    const held = await listAddresses(clients[0]!, 'net1');
    expect(held.size).toBe(20);
    for (const [i, ip] of ips.entries()) expect(held.get(ip)).toBe(`ep${i}`);
  });

  it('starts after the last address handed out, and gives an owner the address it already holds', async () => {
    const s = host();
    const a = await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'a');
    const b = await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'b');
    expect([a, b]).toEqual(['10.71.0.2', '10.71.0.3']);
    expect(await release(s, 'net2', a, 'a')).toBe(true);
    // The freed .2 is not reused at once: the hint says the walk goes on from .3.
    expect(await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'c')).toBe('10.71.0.4');
    expect(await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'b')).toBe(b);
    // A hint that points nowhere useful only costs a longer walk.
    await s.put(keys.addressHint('net2'), 'garbage');
    expect(await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'd')).toBe('10.71.0.2');
    await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'e');
    await allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'f');
    // .2-.6 taken (the /29's .0 and .7 are not usable, .1 is the gateway): full.
    await expect(allocate(s, 'net2', '10.71.0.0/29', '10.71.0.1', 'g')).rejects.toBeInstanceOf(BadStateError);
  });

  it('reserves a wanted address once, and frees only what the owner still holds', async () => {
    const s = host();
    const other = host();
    expect(await allocate(s, 'net3', '10.72.0.0/24', '10.72.0.1', 'x', { preferred: '10.72.0.50' })).toBe('10.72.0.50');
    await expect(allocate(other, 'net3', '10.72.0.0/24', '10.72.0.1', 'y', { preferred: '10.72.0.50' })).rejects.toThrow(/already in use/);
    await expect(allocate(s, 'net3', '10.72.0.0/24', '10.72.0.1', 'y', { preferred: '10.72.0.1' })).rejects.toThrow(/gateway/);
    await expect(allocate(s, 'net3', '10.72.0.0/24', '10.72.0.1', 'y', { preferred: '10.73.0.9' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(allocate(s, 'net3', '10.72.0.0/24', '10.72.0.1', 'y', { preferred: '10.72.0.255' })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await release(other, 'net3', '10.72.0.50', 'y')).toBe(false);
    expect((await listAddresses(s, 'net3')).get('10.72.0.50')).toBe('x');
    // A wanted address does not move the hint: the walk still starts at the front.
    expect(await allocate(s, 'net3', '10.72.0.0/24', '10.72.0.1', 'x2')).toBe('10.72.0.2');
    await allocate(s, 'net3', '10.72.0.0/24', '10.72.0.1', 'z');
    await s.put(keys.address('net3', '10.72.0.99'), 'x2');
    expect((await releaseOwner(s, 'net3', 'x2')).sort()).toEqual(['10.72.0.2', '10.72.0.99']);
    expect([...(await listAddresses(s, 'net3')).values()].sort()).toEqual(['x', 'z']);
  });

  it('returns a dead host\'s addresses to the pool when its lease expires', async () => {
    const dying = host();
    const lease = await dying.grantLease(2);
    const ip = await allocate(dying, 'net4', '10.74.0.0/24', '10.74.0.1', 'h1/ep', { lease });
    await dying.close();
    const survivor = host();
    await until(async () => !(await listAddresses(survivor, 'net4')).has(ip));
    expect((await listAddresses(survivor, 'net4')).has(ip)).toBe(false);
    expect(await allocate(survivor, 'net4', '10.74.0.0/24', '10.74.0.1', 'h2/ep', { preferred: ip })).toBe(ip);
  });
});

describe('flannel subnet leases', () => {
  const prefix = keys.flannel('fnet');
  const vxlan = (mac: string) => ({ BackendType: 'vxlan', BackendData: { VtepMAC: mac, VNI: 1 } });

  it('writes the config in flannel\'s layout once; the first writer wins', async () => {
    const s = host();
    expect(await ensureFlannelConfig(s, prefix, { Network: '10.80.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1 } })).toMatchObject({ Network: '10.80.0.0/16' });
    expect(await ensureFlannelConfig(host(), prefix, { Network: '10.99.0.0/16' })).toMatchObject({ Network: '10.80.0.0/16' });
    expect(JSON.parse((await s.get(`${prefix}/config`))!.value)).toEqual({ Network: '10.80.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1 } });
  });

  it('gives each host its own subnet, racing, and a host its own again', async () => {
    const hosts = Array.from({ length: 6 }, () => host());
    const leases = await Promise.all(hosts.map((s, i) => acquireSubnet(s, prefix, `192.0.2.${i + 10}`, vxlan(`02:00:00:00:00:0${i}`), 30)));
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(6);
    for (const l of leases) expect(l.subnet).toMatch(/^10\.80\.\d+\.0\/24$/);
    expect(leases.map((l) => l.subnet)).not.toContain('10.80.0.0/24');
    const listed = await listSubnets(hosts[0]!, prefix);
    expect(listed.map((l) => l.attrs.PublicIP).sort()).toEqual(leases.map((l) => l.attrs.PublicIP).sort());
    // flannel's key and value shapes
    const key = `${prefix}/subnets/${leases[0]!.subnet.replace('/', '-')}`;
    expect(JSON.parse((await hosts[0]!.get(key))!.value)).toEqual({ PublicIP: '192.0.2.10', BackendType: 'vxlan', BackendData: { VtepMAC: '02:00:00:00:00:00', VNI: 1 } });
    // The host comes back (a new process, a new MAC): same subnet, new data, new lease.
    const again = await acquireSubnet(host(), prefix, '192.0.2.10', vxlan('02:00:00:00:00:aa'), 30);
    expect(again.subnet).toBe(leases[0]!.subnet);
    expect(again.lease).not.toBe(leases[0]!.lease);
    expect(JSON.parse((await hosts[0]!.get(key))!.value).BackendData.VtepMAC).toBe('02:00:00:00:00:aa');
    expect(await renewSubnet(hosts[0]!, again)).toBeGreaterThan(0);
    await releaseSubnet(hosts[0]!, prefix, again);
    expect(await hosts[0]!.get(key)).toBeUndefined();
    for (const [i, l] of leases.entries()) if (i > 0) await releaseSubnet(hosts[i]!, prefix, l);
    expect(await listSubnets(hosts[0]!, prefix)).toEqual([]);
  });

  it('puts a subnet under a lease the caller gives (a host\'s own), its preferred one first, and leaves that lease alone on release', async () => {
    const p = keys.flannel('shared');
    const s = host();
    await ensureFlannelConfig(s, p, { Network: '10.82.0.0/16', SubnetLen: 24 });
    const hostLease = await s.grantLease(30);
    await s.put(`${p}-other-key`, 'x', { lease: hostLease });
    const l = await acquireSubnet(s, p, '192.0.2.7', { BackendType: 'host-gw' }, { lease: hostLease, preferred: '10.82.200.0/24' });
    expect(l.subnet).toBe('10.82.200.0/24');
    expect(l.lease).toBeUndefined();
    expect((await s.get(`${p}/subnets/10.82.200.0-24`))!.lease).toBe(hostLease);
    await releaseSubnet(s, p, l);
    expect(await listSubnets(s, p)).toEqual([]);
    // The host's lease still holds its other keys.
    expect((await s.get(`${p}-other-key`))?.value).toBe('x');
    await s.revokeLease(hostLease);
  });

  it('frees a subnet whose lease is not renewed, and says when every subnet is taken', async () => {
    const p = keys.flannel('small');
    const s = host();
    await ensureFlannelConfig(s, p, { Network: '10.81.0.0/23', SubnetLen: 24 });
    // A /23 of /24s: the first holds the network address, so one subnet to hand out.
    const l = await acquireSubnet(s, p, '192.0.2.1', vxlan('02:00:00:00:01:01'), 2);
    expect(l.subnet).toBe('10.81.1.0/24');
    await expect(acquireSubnet(host(), p, '192.0.2.2', vxlan('02:00:00:00:01:02'), 2)).rejects.toThrow(/every \/24 subnet of 10.81.0.0\/23 is leased/);
    await until(async () => (await listSubnets(s, p)).length === 0);
    expect(await renewSubnet(s, l)).toBe(0);
    expect((await acquireSubnet(host(), p, '192.0.2.2', vxlan('02:00:00:00:01:02'), 30)).subnet).toBe('10.81.1.0/24');
    await expect(acquireSubnet(s, keys.flannel('none'), '192.0.2.3', vxlan('x'), 30)).rejects.toThrow(/has no config/);
  });
});
