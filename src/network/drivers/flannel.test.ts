import { describe, expect, test } from 'vitest';
import { chainNames } from '../firewall.js';
import type { NetworkRecord } from '../types.js';
import { diffFlannelVxlan, diffHostGw, flannelConfigOf, flannelDriver, flannelRules, type FlannelOptions } from './flannel.js';

const parse = (raw: Record<string, string>, subnet = '10.80.0.0/16', internal = false) =>
  flannelDriver.parseOptions(raw, { id: '0123456789abcdef', name: 'fl', internal, subnet }, { defaultBridgeName: 'x' });

describe('flannel options', () => {
  test('vxlan and /24 host subnets by default; flannel config from the record', () => {
    const o = parse({});
    expect(o).toMatchObject({ backend: 'vxlan', subnetLen: 24, bridge: 'berth0123456789', masquerade: false, vni: 0 });
    expect(parse({ 'subnet-len': '20', backend: 'host-gw', vni: '77' })).toMatchObject({ backend: 'host-gw', subnetLen: 20, vni: 77 });
    // flannel's default for a network smaller than a /22: two bits longer.
    expect(parse({}, '10.80.0.0/23').subnetLen).toBe(25);
    expect(flannelConfigOf({ ipam: { subnet: '10.80.0.0/16', gateway: '10.80.0.1' }, driverOptions: { ...o, vni: 4096 } }))
      .toEqual({ Network: '10.80.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 4096, Port: 4789 } });
  });

  test('refused: unknown options and backends, subnet lengths out of range, room for fewer than 2 hosts, --internal', () => {
    expect(() => parse({ backend: 'udp' })).toThrow(/backend=udp is not a flannel backend/);
    expect(() => parse({ mode: 'x' })).toThrow(/no option mode/);
    expect(() => parse({ 'subnet-len': 'x' })).toThrow(/not a prefix length/);
    expect(() => parse({ 'subnet-len': '31' })).toThrow(/at most 30/);
    expect(() => parse({ 'subnet-len': '16' })).toThrow(/longer than the network's \/16/);
    expect(() => parse({ 'subnet-len': '17' })).toThrow(/leaves room for 1 host subnet/);
    expect(parse({ 'subnet-len': '18' }).subnetLen).toBe(18);
    expect(() => parse({}, '10.80.0.0/16', true)).toThrow(/cannot be --internal/);
  });
});

describe('flannel kernel state', () => {
  test('vxlan: missing remotes are added, departed ones removed, correct ones left alone', () => {
    const want = [{ subnet: '10.80.3.0/24', host: '192.0.2.3', vtepMac: '02:00:00:00:00:03' }, { subnet: '10.80.4.0/24', host: '192.0.2.4', vtepMac: '02:00:00:00:00:04' }];
    const have = {
      routes: [{ subnet: '10.80.3.0/24', via: '10.80.3.0' }, { subnet: '10.80.9.0/24', via: '10.80.9.0' }],
      neigh: [{ ip: '10.80.3.0', mac: '02:00:00:00:00:03' }, { ip: '10.80.9.0', mac: '02:00:00:00:00:09' }],
      fdb: [{ mac: '02:00:00:00:00:03', dst: '192.0.2.3' }, { mac: '02:00:00:00:00:09', dst: '192.0.2.9' }],
    };
    const { add, remove } = diffFlannelVxlan(7, want, have);
    expect(add.ip.join('\n')).toContain('route replace 10.80.4.0/24 via 10.80.4.0 dev berthfl7 onlink');
    expect(add.ip.join('\n')).not.toContain('10.80.3.0');
    expect(add.bridge).toEqual(['fdb replace 02:00:00:00:00:04 dev berthfl7 dst 192.0.2.4 self permanent']);
    expect(remove).toEqual({
      ip: ['route del 10.80.9.0/24 dev berthfl7', 'neigh del 10.80.9.0 dev berthfl7'],
      bridge: ['fdb del 02:00:00:00:00:09 dev berthfl7 self'],
    });
  });

  test('host-gw: a route per remote subnet via its host; a moved host is re-routed', () => {
    const { add, remove } = diffHostGw(
      [{ subnet: '10.80.3.0/24', host: '192.0.2.3' }, { subnet: '10.80.4.0/24', host: '192.0.2.5' }],
      [{ subnet: '10.80.3.0/24', via: '192.0.2.3' }, { subnet: '10.80.4.0/24', via: '192.0.2.4' }, { subnet: '10.80.9.0/24', via: '192.0.2.9' }],
    );
    expect(add.ip).toEqual(['route replace 10.80.4.0/24 via 192.0.2.5 proto 190']);
    expect(remove.ip).toEqual(['route del 10.80.4.0/24 via 192.0.2.4 proto 190', 'route del 10.80.9.0/24 via 192.0.2.9 proto 190']);
  });

  test('firewall: routed traffic of the range enters the bridge; other networks may not reach the range; NAT only out of it', () => {
    const net = {
      id: '0123456789abcdef', name: 'fl', driver: 'flannel', internal: false, ipam: { subnet: '10.80.0.0/16', gateway: '10.80.0.1' },
      driverOptions: parse({}),
    } as unknown as NetworkRecord<FlannelOptions>;
    const r = flannelRules(net, [], chainNames('BERTH'));
    const b = 'berth0123456789';
    expect(r.forward![0]).toMatch(new RegExp(`^-s 10.80.0.0/16 ! -i ${b} -o ${b} .* -j ACCEPT$`));
    expect(r.forward!.indexOf(r.forward!.find((l) => l.startsWith(`-o ${b} ! -i ${b}`) && l.endsWith('DROP'))!)).toBeGreaterThan(0);
    expect(r.isolation2).toContain(`! -i ${b} -d 10.80.0.0/16 -m comment --comment "berth:net:0123456789ab" -j DROP`);
    expect(r.postrouting!.filter((l) => l.includes('MASQUERADE') && l.includes('10.80.0.0/16'))).toEqual([
      '-s 10.80.0.0/16 ! -d 10.80.0.0/16 -m comment --comment "berth:net:0123456789ab" -j MASQUERADE',
    ]);
  });
});
