import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseCidr6 } from './cidr6.js';
import { parseCidr } from './cidr.js';
import { IPV4, IPV6, parsePools, planPool, poolName, poolSubnets, splitByFamily } from './subnets.js';

describe('subnet planning', () => {
  it('splits subnets, gateways and ranges by family and wants --ipv6 for IPv6 ones', () => {
    expect(splitByFamily({ name: 'n', ipv6: true, subnets: ['10.1.0.0/24', 'fd00:1::/64'], gateways: ['fd00:1::fe'] })).toEqual({
      v4: { subnet: '10.1.0.0/24' }, v6: { subnet: 'fd00:1::/64', gateway: 'fd00:1::fe' },
    });
    expect(() => splitByFamily({ name: 'n', subnets: ['10.1.0.0/24', 'fd00:1::/64'] })).toThrow(/fd00:1::\/64 is IPv6.*/);
    expect(() => splitByFamily({ name: 'n', ipv6: true, subnets: ['fd00:1::/64', 'fd00:2::/64'] })).toThrow(InvalidArgumentError);
    expect(() => splitByFamily({ name: 'n', subnets: ['10.1.0.0/24', '10.2.0.0/24'] })).toThrow(/at most one subnet/);
  });

  it('plans IPv6 pools: gateway ::1 by default, overlap refused, automatic /64s from the ULA pool', () => {
    expect(planPool(IPV6, { subnet: 'fd00:1::/64' }, [], { uses: [] })).toEqual({ subnet: 'fd00:1::/64', gateway: 'fd00:1::1' });
    expect(planPool(IPV6, { subnet: 'fd00:1::/64', gateway: 'FD00:1:0::FE' }, [], { uses: [] }).gateway).toBe('fd00:1::fe');
    expect(() => planPool(IPV6, { subnet: 'fd00:1::/64', gateway: 'fd00:2::1' }, [], { uses: [] })).toThrow(/not a host address/);
    expect(() => planPool(IPV6, { subnet: 'fd00:1::/64' }, [{ name: 'other', subnet: 'fd00:1::/48' }], { uses: [] })).toThrow(/overlaps network other/);
    expect(() => planPool(IPV6, { gateway: 'fd00:1::1' }, [], { uses: [] })).toThrow(/needs an IPv6 --subnet/);
    const taken = [{ name: 'a', subnet: 'fd00:b5e7::/64' }];
    expect(planPool(IPV6, {}, taken, { uses: [{ net: parseCidr6('fd00:b5e7:0:1::/64', 'r'), dev: 'eth0', kind: 'route' }] }).subnet).toBe('fd00:b5e7:0:2::/64');
  });

  it('still plans IPv4 as before, from the 10.160.0.0/13 pool', () => {
    expect(planPool(IPV4, { subnet: '10.1.0.0/24' }, [], { uses: [] })).toEqual({ subnet: '10.1.0.0/24', gateway: '10.1.0.1' });
    expect(planPool(IPV4, {}, [{ name: 'a', subnet: '10.160.0.0/24' }], { uses: [] }).subnet).toBe('10.160.1.0/24');
    expect(() => planPool(IPV4, { subnet: '10.1.0.0/24', gateway: '10.1.0.255' }, [], { uses: [] })).toThrow(InvalidArgumentError);
  });

  const route = (cidr: string, dev: string) => ({ net: parseCidr(cidr, 'r'), dev, kind: 'route' as const });
  const address = (ip: string, dev: string) => ({ net: parseCidr(`${ip}/32`, 'r'), dev, kind: 'address' as const });

  it('refuses a given subnet the host routes, naming the route, unless allowed or on the network\'s own device', () => {
    const uses = [route('10.182.26.0/24', 'eth1'), address('10.9.0.5', 'tun0')];
    expect(() => planPool(IPV4, { subnet: '10.182.0.0/16' }, [], { uses, refuseOverlap: true }))
      .toThrow(/10.182.0.0\/16 is already used on the host: route 10.182.26.0\/24 dev eth1/);
    expect(() => planPool(IPV4, { subnet: '10.9.0.0/24' }, [], { uses, refuseOverlap: true })).toThrow(/address 10.9.0.5 on tun0/);
    expect(planPool(IPV4, { subnet: '10.182.26.0/24' }, [], { uses, refuseOverlap: true, allowOverlap: true }).subnet).toBe('10.182.26.0/24');
    expect(planPool(IPV4, { subnet: '10.182.26.0/24' }, [], { uses, refuseOverlap: true, ownDevice: 'eth1' }).subnet).toBe('10.182.26.0/24');
    // macvlan: its subnet is its parent's LAN
    expect(planPool(IPV4, { subnet: '10.182.26.0/24' }, [], { uses }).subnet).toBe('10.182.26.0/24');
  });

  it('takes the candidate when free, else the next free subnet of the pools; says when they run out', () => {
    const pools = [{ base: '10.50.0.0/30', size: 31 }, { base: '10.60.0.0/24', size: 26 }];
    expect(() => parsePools(pools)).toThrow(/size 31: the size must be from 30 .* to 30/);
    const small = [{ base: '10.60.0.0/24', size: 26 }];
    const view = (uses: ReturnType<typeof route>[], candidate?: string) => ({
      uses, pool: () => poolSubnets(small), poolName: poolName(small), ...(candidate ? { candidate: parseCidr(candidate, 'c') } : {}),
    });
    expect(planPool(IPV4, {}, [], view([], '10.70.0.0/24')).subnet).toBe('10.70.0.0/24');
    expect(planPool(IPV4, {}, [], view([route('10.70.0.0/16', 'wg0')], '10.70.0.0/24')).subnet).toBe('10.60.0.0/26');
    expect(planPool(IPV4, {}, [{ name: 'a', subnet: '10.60.0.0/26' }], view([route('10.60.0.64/27', 'x')])).subnet).toBe('10.60.0.128/26');
    expect(() => planPool(IPV4, {}, [{ name: 'a', subnet: '10.60.0.0/25' }, { name: 'b', subnet: '10.60.0.128/25' }], view([])))
      .toThrow(/no free IPv4 subnet left in the address pools \(10.60.0.0\/24 by \/26\)/);
    expect(() => parsePools([{ base: 'fd00::/48', size: 64 }])).toThrow(/IPv6 pools are not supported yet/);
    expect([...poolSubnets([{ base: '10.160.0.0/13', size: 24 }])]).toHaveLength(2048);
  });
});
