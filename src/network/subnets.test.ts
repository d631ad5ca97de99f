import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseCidr6 } from './cidr6.js';
import { IPV4, IPV6, planPool, splitByFamily } from './subnets.js';

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
    expect(planPool(IPV6, { subnet: 'fd00:1::/64' }, [], [])).toEqual({ subnet: 'fd00:1::/64', gateway: 'fd00:1::1' });
    expect(planPool(IPV6, { subnet: 'fd00:1::/64', gateway: 'FD00:1:0::FE' }, [], []).gateway).toBe('fd00:1::fe');
    expect(() => planPool(IPV6, { subnet: 'fd00:1::/64', gateway: 'fd00:2::1' }, [], [])).toThrow(/not a host address/);
    expect(() => planPool(IPV6, { subnet: 'fd00:1::/64' }, [{ name: 'other', subnet: 'fd00:1::/48' }], [])).toThrow(/overlaps network other/);
    expect(() => planPool(IPV6, { gateway: 'fd00:1::1' }, [], [])).toThrow(/needs an IPv6 --subnet/);
    const taken = [{ name: 'a', subnet: 'fd00:b5e7::/64' }];
    expect(planPool(IPV6, {}, taken, [parseCidr6('fd00:b5e7:0:1::/64', 'r')]).subnet).toBe('fd00:b5e7:0:2::/64');
  });

  it('still plans IPv4 as before', () => {
    expect(planPool(IPV4, { subnet: '10.1.0.0/24' }, [], [])).toEqual({ subnet: '10.1.0.0/24', gateway: '10.1.0.1' });
    expect(planPool(IPV4, {}, [{ name: 'a', subnet: '10.89.0.0/24' }], []).subnet).toBe('10.89.1.0/24');
    expect(() => planPool(IPV4, { subnet: '10.1.0.0/24', gateway: '10.1.0.255' }, [], [])).toThrow(InvalidArgumentError);
  });
});
