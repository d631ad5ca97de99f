import { describe, expect, it } from 'vitest';
import type { EndpointRecord, NetworkDetails, NetworkRecord } from '../network/index.js';
import { networkView } from './networks.js';

const net: NetworkRecord = {
  id: 'n'.repeat(64), name: 'ds', driver: 'bridge', created: '2024-01-01T00:00:00Z', internal: false, ipv6: true,
  ipam: { subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: '10.1.0.128/25' }, ipam6: { subnet: 'fd00::/64', gateway: 'fd00::1' },
  options: { o: '1' }, driverOptions: { bridge: 'berthx' }, labels: { team: 'a' }, dns: true,
};
const endpoint: EndpointRecord = {
  networkId: net.id, networkName: 'ds', driver: 'bridge', interface: 'eth0', ipv4: '10.1.0.130', prefixLength: 24,
  ipv6: 'fd00::2', prefixLength6: 64, mac: '02:42:0a:01:00:82', aliases: [],
};

describe('networkView', () => {
  it('shows subnets of both families and each member with its addresses in CIDR form', () => {
    const details: NetworkDetails = { network: net, members: [{ containerId: 'c'.repeat(64), name: 'web', endpoint }], warnings: [] };
    const view = networkView(details);
    expect(view).toMatchObject({
      id: net.id, name: 'ds', driver: 'bridge', scope: 'local', ipv6: true, options: { o: '1' }, labels: { team: 'a' },
      subnets: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: '10.1.0.128/25' }, { subnet: 'fd00::/64', gateway: 'fd00::1' }],
    });
    expect(view.containers['c'.repeat(64)]).toMatchObject({ name: 'web', ipv4: '10.1.0.130/24', ipv6: 'fd00::2/64', mac: '02:42:0a:01:00:82' });
    // The endpoint ID is derived, so every inspect shows the same one.
    expect(networkView(details).containers['c'.repeat(64)]!.endpoint).toBe(view.containers['c'.repeat(64)]!.endpoint);
  });
});
