import { describe, expect, test } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import {
  diffRemoteEndpoints, flannelRemoteLines, flannelVtepLines, hostGwRouteLines, overlayNetworkLines, overlayVxlanName,
  parseVni, remoteEndpointLines, remoteEndpointRemoval, ROUTE_PROTO,
} from './vxlan.js';

describe('vxlan line builders', () => {
  test('an overlay network: bridge with the gateway, a nolearning proxy VXLAN port in it, no flooding entry', () => {
    const l = overlayNetworkLines({ networkId: '0123456789abcdef', vni: 4097, gateway: '10.70.0.1/16', local: '192.0.2.5', mtu: 1450 });
    expect(l.ip).toContain('addr add 10.70.0.1/16 dev berth0123456789');
    expect(l.ip).toContain('link add berthvx4097 mtu 1450 type vxlan id 4097 local 192.0.2.5 dstport 4789 nolearning proxy');
    expect(l.ip).toContain('link set berthvx4097 master berth0123456789');
    expect(l.bridge).toEqual([]);
    expect(overlayNetworkLines({ networkId: 'x', vni: 1, gateway: '10.0.0.1/24', local: '192.0.2.5', mtu: 1450, dstport: 8472 }).ip.join('\n')).toContain('dstport 8472');
  });

  test('names fit the kernel\'s 15 characters at the largest VNI', () => {
    expect(overlayVxlanName(16_777_215)).toBe('berthvx16777215');
    expect(overlayVxlanName(16_777_215).length).toBeLessThanOrEqual(15);
  });

  test('bad input is refused with a typed error naming it', () => {
    for (const v of [0, 16_777_216, '12a', '']) expect(() => parseVni(v)).toThrow(InvalidArgumentError);
    expect(() => remoteEndpointLines(1, { ip: '10.0.0.2', mac: '00:00:00:00:00:00', host: '192.0.2.1' })).toThrow(/unicast/);
    expect(() => remoteEndpointLines(1, { ip: '10.0.0.2', mac: '01:00:5e:00:00:01', host: '192.0.2.1' })).toThrow(/multicast/);
    expect(() => remoteEndpointLines(1, { ip: '10.0.0.300', mac: '02:00:00:00:00:01', host: '192.0.2.1' })).toThrow(/endpoint address/);
    expect(() => overlayNetworkLines({ networkId: 'x', vni: 1, gateway: '10.0.0.1', local: '192.0.2.5', mtu: 1450 })).toThrow(/gateway/);
    expect(() => overlayNetworkLines({ networkId: 'x', vni: 1, gateway: '10.0.0.1/24', local: '192.0.2.5', mtu: 40 })).toThrow(/mtu/);
  });

  test('a remote endpoint: a permanent neighbour for the ARP proxy and a unicast FDB entry; removal names both', () => {
    const ep = { ip: '10.70.0.9', mac: '02:42:0A:46:00:09', host: '192.0.2.7' };
    expect(remoteEndpointLines(7, ep)).toEqual({
      ip: ['neigh replace 10.70.0.9 lladdr 02:42:0a:46:00:09 dev berthvx7 nud permanent'],
      bridge: ['fdb replace 02:42:0a:46:00:09 dev berthvx7 dst 192.0.2.7 self permanent'],
    });
    expect(remoteEndpointRemoval(7, ep)).toEqual({ ip: ['neigh del 10.70.0.9 dev berthvx7'], bridge: ['fdb del 02:42:0a:46:00:09 dev berthvx7 self'] });
  });

  test('flannel: host-gw route, and the vxlan backend\'s .0 onlink route, neighbour and FDB entries', () => {
    expect(hostGwRouteLines({ subnet: '10.5.2.0/24', host: '192.0.2.2' }).ip).toEqual([`route replace 10.5.2.0/24 via 192.0.2.2 proto ${ROUTE_PROTO}`]);
    expect(flannelVtepLines({ vni: 1, subnet: '10.5.1.0/24', local: '192.0.2.1', mtu: 1450 }).ip).toContain('addr add 10.5.1.0/32 dev berthfl1');
    expect(flannelRemoteLines(1, { subnet: '10.5.2.0/24', host: '192.0.2.2', vtepMac: '02:00:00:00:00:02' })).toEqual({
      ip: ['neigh replace 10.5.2.0 lladdr 02:00:00:00:00:02 dev berthfl1 nud permanent', `route replace 10.5.2.0/24 via 10.5.2.0 dev berthfl1 onlink proto ${ROUTE_PROTO}`],
      bridge: ['fdb replace 02:00:00:00:00:02 dev berthfl1 dst 192.0.2.2 self permanent'],
    });
  });

  test('the diff adds what is missing or wrong and removes what is no longer wanted, nothing else', () => {
    const want = [{ ip: '10.70.0.2', mac: '02:00:00:00:00:02', host: '192.0.2.2' }, { ip: '10.70.0.3', mac: '02:00:00:00:00:03', host: '192.0.2.3' }];
    const have = {
      fdb: [{ mac: '02:00:00:00:00:02', dst: '192.0.2.2' }, { mac: '02:00:00:00:00:03', dst: '192.0.2.9' }, { mac: '02:00:00:00:00:04', dst: '192.0.2.4' }],
      neigh: [{ ip: '10.70.0.2', mac: '02:00:00:00:00:02' }, { ip: '10.70.0.3', mac: '02:00:00:00:00:03' }, { ip: '10.70.0.4', mac: '02:00:00:00:00:04' }],
      routes: [],
    };
    const d = diffRemoteEndpoints(5, want, have);
    expect(d.add.bridge).toEqual(['fdb replace 02:00:00:00:00:03 dev berthvx5 dst 192.0.2.3 self permanent']);
    expect(d.remove).toEqual({ ip: ['neigh del 10.70.0.4 dev berthvx5'], bridge: ['fdb del 02:00:00:00:00:04 dev berthvx5 self'] });
    expect(diffRemoteEndpoints(5, want.slice(0, 1), { fdb: have.fdb.slice(0, 1), neigh: have.neigh.slice(0, 1), routes: [] }))
      .toEqual({ add: { ip: [], bridge: [] }, remove: { ip: [], bridge: [] } });
  });
});
