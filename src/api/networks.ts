/**
 * The network layer's records shaped as Docker shows a network (`network ls`, `network inspect`).
 */
import { createHash } from 'node:crypto';
import type { NetworkDetails } from '../network/index.js';
import type { NetworkSummary } from '../types.js';

const BRIDGE_NAME = 'com.docker.network.bridge.name';

export function networkView({ network: net, members, warnings, peers }: NetworkDetails): NetworkSummary {
  const containers: NetworkSummary['containers'] = {};
  for (const { containerId, name, endpoint: ep } of members) {
    containers[containerId] = {
      // Docker's EndpointID is its own random ID; Berth's is derived, so inspect shows the same one each time.
      name, endpoint: createHash('sha256').update(`${containerId}/${net.id}`).digest('hex'),
      ...(ep.ipv4 ? { ipv4: `${ep.ipv4}/${ep.prefixLength}` } : {}), ...(ep.ipv6 ? { ipv6: `${ep.ipv6}/${ep.prefixLength6}` } : {}), mac: ep.mac,
    };
  }
  const bridge = net.driver === 'bridge' ? (net.driverOptions as { bridge?: string }).bridge : undefined;
  return {
    id: net.id, name: net.name, driver: net.driver, scope: net.scope ?? 'local', created: net.created, internal: net.internal, ipv6: net.ipv6,
    subnets: [net.ipam, net.ipam6].flatMap((p) => (p ? [{ subnet: p.subnet, gateway: p.gateway, ...(p.ipRange ? { ipRange: p.ipRange } : {}) }] : [])),
    // Docker shows the Linux bridge of every bridge network among its options.
    options: bridge ? { ...net.options, [BRIDGE_NAME]: bridge } : net.options, labels: net.labels, containers,
    ...(warnings?.length ? { warnings } : {}), ...(peers ? { peers } : {}),
  };
}

/** `docker network inspect`'s shape (PascalCase, IPAM block), since scripts read it with --format. */
export function networkInspectView(n: NetworkSummary): Record<string, unknown> {
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: n.scope,
    Driver: n.driver,
    EnableIPv6: n.ipv6,
    IPAM: {
      Driver: 'default',
      Options: {},
      Config: n.subnets.map((s) => ({ Subnet: s.subnet, ...(s.gateway ? { Gateway: s.gateway } : {}), ...(s.ipRange ? { IPRange: s.ipRange } : {}) })),
    },
    Internal: n.internal,
    // Standalone containers may join every global network (there is no swarm service to reserve it for).
    Attachable: n.scope === 'global',
    Ingress: false,
    Containers: Object.fromEntries(Object.entries(n.containers).map(([id, c]) => [id, {
      Name: c.name, EndpointID: c.endpoint, MacAddress: c.mac ?? '', IPv4Address: c.ipv4 ?? '', IPv6Address: c.ipv6 ?? '',
    }])),
    Options: n.options,
    Labels: n.labels,
    // Not Docker's: what the host holds inside the subnet since the bridge was made (a VPN came up).
    ...(n.warnings?.length ? { Warnings: n.warnings } : {}),
    // Docker's Peers of a global network; Subnet (each host's, flannel) is not Docker's.
    ...(n.peers ? { Peers: n.peers.map((p) => ({ Name: p.name, IP: p.ip, ...(p.subnet ? { Subnet: p.subnet } : {}) })) } : {}),
  };
}
