import { describe, expect, it } from 'vitest';
import { chainNames } from '../firewall.js';
import type { NetworkRecord } from '../types.js';
import { bridgeDriver, bridgeRules, bridgeRules6, type BridgeOptions } from './bridge.js';

const ID = 'c'.repeat(64);
const net = (over: Partial<NetworkRecord<BridgeOptions>> = {}): NetworkRecord<BridgeOptions> => ({
  id: 'f'.repeat(64), name: 'n', driver: 'bridge', created: '', internal: false, ipv6: false, options: {}, labels: {}, dns: true,
  ipam: { subnet: '10.231.1.0/24', gateway: '10.231.1.1' },
  driverOptions: { bridge: 'berthx', icc: true, masquerade: true, mtu: 1500 }, ...over,
});
const chains = chainNames('BERTHU');
const port = { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' as const };

describe('bridge rules', () => {
  it('publishes ports with DNAT, a forward accept of DNATed traffic only, and hairpin masquerade', () => {
    const r = bridgeRules(net(), [{ containerId: ID, ipv4: '10.231.1.2', ports: [port] }], chains);
    expect(r.dnat).toEqual([`-d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment "berth:${ID}" -j DNAT --to-destination 10.231.1.2:80`]);
    expect(r.ports).toEqual([`-d 10.231.1.2/32 ! -i berthx -o berthx -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment --comment "berth:${ID}" -j ACCEPT`]);
    expect(r.postrouting).toContain(`-s 10.231.1.2/32 -d 10.231.1.2/32 -p tcp -m tcp --dport 80 -m comment --comment "berth:${ID}" -j MASQUERADE`);
    expect(r.postrouting!.some((l) => l.startsWith('-s 10.231.1.0/24 ! -o berthx'))).toBe(true);
    // Anything else entering the bridge from outside is dropped, whatever the FORWARD policy.
    expect(r.forward!.at(-1)).toBe('-o berthx ! -i berthx -m comment --comment "berth:net:ffffffffffff" -j DROP');
    // The host's loopback is not for containers (route_localnet is on for 127.0.0.1 publishing).
    expect(r.raw).toEqual(['-i berthx -d 127.0.0.0/8 -m comment --comment "berth:net:ffffffffffff" -j DROP']);
  });

  it('gives internal networks drops and no NAT', () => {
    const r = bridgeRules(net({ internal: true }), [{ containerId: ID, ipv4: '10.231.1.2', ports: [port] }], chains);
    expect(r.dnat).toEqual([]);
    expect(r.postrouting).toEqual([]);
    expect(r.forward!.filter((l) => l.endsWith('-j DROP'))).toHaveLength(2);
  });

  it('gives IPv6 the same structure without the 127.0.0.0/8 masquerade, and ports on IPv6 addresses but ::1', () => {
    const v6 = { ipam6: { subnet: 'fd42:7e57:1::/64', gateway: 'fd42:7e57:1::1' } };
    const r = bridgeRules6(net(v6), [], chains);
    expect(r.isolation1).toHaveLength(1);
    expect(r.dnat).toEqual([]);
    expect(r.postrouting).toEqual([`-s fd42:7e57:1::/64 ! -o berthx -m comment --comment "berth:net:ffffffffffff" -j MASQUERADE`]);
    expect(r.forward!.at(-1)).toContain('-o berthx ! -i berthx');
    expect(r.raw).toEqual([]);
    expect(bridgeRules6(net({ ...v6, internal: true }), [], chains).postrouting).toEqual([]);
    const port = (hostIp: string, hostPort: number) => ({ hostIp, hostPort, containerPort: 80, protocol: 'tcp' as const });
    const ep = { containerId: 'c'.repeat(64), ipv4: '10.1.0.2', ipv6: 'fd42:7e57:1::2', ports: [port('0.0.0.0', 8080), port('::1', 8081), port('fd00::5', 8082), port('127.0.0.1', 8083)] };
    const who = `-m comment --comment "berth:${'c'.repeat(64)}"`;
    expect(bridgeRules6(net(v6), [ep], chains).dnat).toEqual([
      `! -d ::1/128 -p tcp -m tcp --dport 8080 ${who} -j DNAT --to-destination [fd42:7e57:1::2]:80`,
      `-d fd00::5/128 -p tcp -m tcp --dport 8082 ${who} -j DNAT --to-destination [fd42:7e57:1::2]:80`,
    ]);
    // IPv4 rules leave the IPv6 ports out.
    expect(bridgeRules(net(v6), [ep], chains).dnat!.map((l) => /--dport (\d+)/.exec(l)![1])).toEqual(['8080', '8083']);
  });

  it('reads Docker options into a typed record', () => {
    const ctx = { defaultBridgeName: 'berth0' };
    const parsed = bridgeDriver.parseOptions({ 'com.docker.network.bridge.enable_icc': 'false', 'com.docker.network.driver.mtu': '1400' }, { id: 'ab'.repeat(32), name: 'x', internal: false }, ctx);
    expect(parsed).toEqual({ bridge: 'berthababababab', icc: false, masquerade: true, mtu: 1400 });
    expect(bridgeDriver.parseOptions({}, { id: 'ab'.repeat(32), name: 'bridge', internal: false }, ctx).bridge).toBe('berth0');
    expect(() => bridgeDriver.parseOptions({ 'com.docker.network.driver.mtu': '9' }, { id: 'a', name: 'x', internal: false }, ctx)).toThrow(/mtu/);
  });
});
