/**
 * The network layer's records shaped as Docker shows a network (`network ls`, `network inspect`).
 */
import { createHash } from 'node:crypto';
import type { NetworkDetails } from '../network/index.js';
import type { NetworkSummary } from '../types.js';

const BRIDGE_NAME = 'com.docker.network.bridge.name';

export function networkView({ network: net, members, warnings }: NetworkDetails): NetworkSummary {
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
    id: net.id, name: net.name, driver: net.driver, scope: 'local', created: net.created, internal: net.internal, ipv6: net.ipv6,
    subnets: [net.ipam, net.ipam6].flatMap((p) => (p ? [{ subnet: p.subnet, gateway: p.gateway, ...(p.ipRange ? { ipRange: p.ipRange } : {}) }] : [])),
    // Docker shows the Linux bridge of every bridge network among its options.
    options: bridge ? { ...net.options, [BRIDGE_NAME]: bridge } : net.options, labels: net.labels, containers,
    ...(warnings?.length ? { warnings } : {}),
  };
}
