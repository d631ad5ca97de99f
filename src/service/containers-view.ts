/**
 * The Engine's container views in the Engine API's shapes: `GET /containers/json` rows (ContainerSummary in
 * the v1.41 reference) and the few fields inspect lacks against Docker's.
 */
import type { ContainerEndpoint, ContainerInspect, ContainerSummary } from '../api/types.js';

function endpointView(e: ContainerEndpoint): Record<string, unknown> {
  return {
    IPAMConfig: null, Links: null, Aliases: e.aliases.length ? e.aliases : null, NetworkID: e.networkId, EndpointID: '',
    Gateway: e.gateway, IPAddress: e.ipv4, IPPrefixLen: e.prefixLength, IPv6Gateway: '', GlobalIPv6Address: e.ipv6,
    GlobalIPv6PrefixLen: 0, MacAddress: e.mac, DriverOpts: null,
  };
}

const NO_ENDPOINT: ContainerEndpoint = { network: '', networkId: '', ipv4: '', prefixLength: 0, gateway: '', ipv6: '', mac: '', aliases: [] };

/**
 * Docker lists a container's networks from create on (compose reads them to know what is connected);
 * Berth has endpoints only while the container runs, so a network without one shows with empty addresses.
 * A container sharing another's stack (container:ID) has none of its own.
 */
function networksView(names: readonly string[], endpoints: readonly ContainerEndpoint[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names) if (n && !n.startsWith('container:')) out[n] = endpointView({ ...NO_ENDPOINT, network: n });
  for (const e of endpoints) out[e.network] = endpointView(e);
  return out;
}

export function sha256Id(id: string): string {
  return !id || id.startsWith('sha256:') ? id : `sha256:${id}`;
}

export function listRowView(c: ContainerSummary): Record<string, unknown> {
  return {
    Id: c.id,
    Names: c.names.map((n) => (n.startsWith('/') ? n : `/${n}`)),
    Image: c.image,
    ImageID: sha256Id(c.imageId),
    Command: c.command,
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: c.ports.map((p) => ({ IP: p.hostIp || '0.0.0.0', PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.protocol })),
    ...(c.sizeRw !== undefined ? { SizeRw: c.sizeRw, SizeRootFs: c.sizeRootFs ?? 0 } : {}),
    Labels: c.labels,
    State: c.state,
    Status: c.status,
    HostConfig: { NetworkMode: c.networkMode ?? c.networks[0] ?? 'bridge' },
    NetworkSettings: { Networks: networksView(c.networks, c.endpoints ?? []) },
    Mounts: c.mounts ?? [],
  };
}

/**
 * Docker lists an exposed port that is not published as `"80/tcp": null` in NetworkSettings.Ports (compose
 * and `docker port` read that map); Berth's inspect lists published ones only.
 */
export function inspectApiView(i: ContainerInspect): ContainerInspect {
  const exposed = Object.keys((i.Config.ExposedPorts as Record<string, unknown> | undefined) ?? {});
  const ports = { ...((i.NetworkSettings.Ports as Record<string, unknown> | undefined) ?? {}) };
  for (const p of exposed) if (!(p in ports)) ports[p] = null;
  const networks = i.NetworkSettings.Networks as Record<string, unknown> | undefined;
  const mode = String(i.HostConfig.NetworkMode ?? '');
  const planned = networks && Object.keys(networks).length ? networks : networksView([mode], []);
  return { ...i, Image: sha256Id(i.Image), NetworkSettings: { ...i.NetworkSettings, Ports: ports, Networks: planned } };
}
