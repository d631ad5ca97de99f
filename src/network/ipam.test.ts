import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { assignableRange, formatIpv4, parseCidr, parseIpv4 } from './cidr.js';
import { AddressPool, candidates, releaseOrphans } from './ipam.js';

describe('candidates', () => {
  const subnet = parseCidr('10.231.9.0/29', 's');
  const gw = parseIpv4('10.231.9.1')!;
  const range = { first: BigInt(assignableRange(subnet).first), last: BigInt(assignableRange(subnet).last) };
  const list = (last?: string) => [...candidates(range, BigInt(gw), last ? BigInt(parseIpv4(last)!) : undefined)].map((ip) => formatIpv4(Number(ip)));

  it('skips network, broadcast and gateway, and rotates after the last one handed out', () => {
    expect(list()).toEqual(['10.231.9.2', '10.231.9.3', '10.231.9.4', '10.231.9.5', '10.231.9.6']);
    expect(list('10.231.9.4')).toEqual(['10.231.9.5', '10.231.9.6', '10.231.9.2', '10.231.9.3', '10.231.9.4']);
    expect(list('10.231.9.6')[0]).toBe('10.231.9.2');
  });
});

describe('AddressPool', () => {
  let dir = '';
  afterEach(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('hands out distinct addresses to parallel callers and frees them', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-ipam-'));
    const pool = new AddressPool(path.join(dir, 'pool'), path.join(dir, 'lock'), 'n1', { subnet: '10.231.9.0/27', gateway: '10.231.9.1' });
    const owners = Array.from({ length: 20 }, (_, i) => `ctr${i}`);
    const ips = await Promise.all(owners.map((o) => pool.allocate(o)));
    expect(new Set(ips).size).toBe(20);
    expect(ips).not.toContain('10.231.9.1');
    await pool.release('someone-else', ips[0]!);
    expect((await pool.holders()).get(ips[0]!)).toBe('ctr0');
    await pool.release('ctr0', ips[0]!);
    expect((await pool.holders()).has(ips[0]!)).toBe(false);
    expect(await releaseOrphans(path.join(dir, 'pool'), (o) => o !== 'ctr1')).toEqual([ips[1]]);
  });

  it('reserves static addresses and refuses bad or taken ones', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-ipam-'));
    const pool = new AddressPool(path.join(dir, 'pool'), path.join(dir, 'lock'), 'n1', { subnet: '10.231.9.0/29', gateway: '10.231.9.1' });
    expect(await pool.allocate('a', '10.231.9.5')).toBe('10.231.9.5');
    await expect(pool.allocate('b', '10.231.9.5')).rejects.toThrow(BadStateError);
    for (const bad of ['10.231.9.1', '10.231.9.7', '10.231.9.0', '10.231.10.2', 'x']) await expect(pool.allocate('b', bad)).rejects.toThrow(InvalidArgumentError);
    for (let i = 0; i < 4; i++) await pool.allocate(`c${i}`);
    await expect(pool.allocate('d')).rejects.toThrow(/no free IPv4/);
  });

  it('hands out IPv6 addresses from ::2, distinct under concurrency, beside the IPv4 ones', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-ipam-'));
    const [folder, lock] = [path.join(dir, 'pool'), path.join(dir, 'lock')];
    const v6 = new AddressPool(folder, lock, 'n1', { subnet: 'fd42:7e57:9::/64', gateway: 'fd42:7e57:9::1' }, 6);
    const v4 = new AddressPool(folder, lock, 'n1', { subnet: '10.231.9.0/27', gateway: '10.231.9.1' });
    const ips = await Promise.all(Array.from({ length: 10 }, (_, i) => v6.allocate(`ctr${i}`)));
    expect(new Set(ips).size).toBe(10);
    expect([...ips].sort()).toContain('fd42:7e57:9::2');
    expect(ips).not.toContain('fd42:7e57:9::1');
    expect(await v4.allocate('ctr0')).toBe('10.231.9.2');
    expect((await v6.holders()).size).toBe(10);
    expect((await v4.holders()).size).toBe(1);
    // The user's spelling is canonicalized, so a taken address is found whatever the form.
    expect(await v6.allocate('s', 'fd42:7e57:9:0:0:0:0:ff')).toBe('fd42:7e57:9::ff');
    await expect(v6.allocate('t', 'FD42:7E57:9::FF')).rejects.toThrow(BadStateError);
    for (const bad of ['fd42:7e57:9::1', 'fd42:7e57:a::5', 'fd42:7e57:9::', '10.231.9.5']) await expect(v6.allocate('t', bad)).rejects.toThrow(InvalidArgumentError);
    expect((await releaseOrphans(folder, (o) => o !== 'ctr0')).sort()).toEqual(['10.231.9.2', ips[0]].sort());
  });
});
