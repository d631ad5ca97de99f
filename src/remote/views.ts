/**
 * The Engine API's answers as Berth's API types: the inverse of the service's views (containers-view.ts,
 * images.ts, networks.ts, volumes.ts), so that the CLI prints a remote engine's objects as a local one's.
 */
import type { ContainerEndpoint, ContainerSummary, ImageSummary, NetworkSummary, PortBinding, RemovedImage, VolumeSummary } from '../types.js';

type Json = Record<string, any>;

const NONE_TAG = '<none>:<none>';
const NONE_DIGEST = '<none>@<none>';

function iso(unixSeconds: unknown): string {
  return new Date(Number(unixSeconds ?? 0) * 1000).toISOString();
}

export function containerSummaryOf(row: Json): ContainerSummary {
  const networks = (row.NetworkSettings?.Networks ?? {}) as Record<string, Json>;
  const endpoints: ContainerEndpoint[] = Object.entries(networks).filter(([, e]) => e?.IPAddress).map(([network, e]) => ({
    network, networkId: e.NetworkID ?? '', ipv4: e.IPAddress ?? '', prefixLength: e.IPPrefixLen ?? 0, gateway: e.Gateway ?? '',
    ipv6: e.GlobalIPv6Address ?? '', mac: e.MacAddress ?? '', aliases: e.Aliases ?? [],
  }));
  return {
    id: row.Id,
    names: ((row.Names ?? []) as string[]).map((n) => n.replace(/^\//, '')),
    image: row.Image ?? '',
    imageId: String(row.ImageID ?? '').replace(/^sha256:/, ''),
    command: row.Command ?? '',
    created: iso(row.Created),
    state: row.State,
    status: row.Status ?? '',
    ports: ((row.Ports ?? []) as Json[]).filter((p) => p.PublicPort).map((p): PortBinding => ({
      hostIp: p.IP === '0.0.0.0' ? '' : p.IP ?? '', hostPort: p.PublicPort, containerPort: p.PrivatePort, protocol: p.Type,
    })),
    labels: row.Labels ?? {},
    networks: Object.keys(networks),
    networkMode: row.HostConfig?.NetworkMode,
    endpoints,
    mounts: row.Mounts ?? [],
    ...(row.SizeRw !== undefined ? { sizeRw: row.SizeRw, sizeRootFs: row.SizeRootFs } : {}),
  };
}

/** One row per tag, as Berth's own list gives them (the API groups an image's tags in one entry). */
export function imageSummariesOf(rows: Json[]): ImageSummary[] {
  const out: ImageSummary[] = [];
  for (const r of rows) {
    const tags = ((r.RepoTags ?? []) as string[]).filter((t) => t !== NONE_TAG);
    const digests = ((r.RepoDigests ?? []) as string[]).filter((d) => d !== NONE_DIGEST);
    const base = { id: r.Id, repoDigests: digests, created: iso(r.Created), size: r.Size ?? 0 };
    if (!tags.length) out.push({ ...base, repoTags: [] });
    for (const t of tags) out.push({ ...base, repoTags: [t] });
  }
  return out;
}

export function removedImagesOf(rows: Json[]): RemovedImage[] {
  return rows.map((r) => (r.Untagged !== undefined ? { untagged: r.Untagged } : { deleted: r.Deleted }));
}

export function networkSummaryOf(n: Json): NetworkSummary {
  return {
    id: n.Id, name: n.Name, driver: n.Driver, scope: n.Scope === 'global' || n.Scope === 'swarm' ? 'global' : 'local', created: n.Created,
    internal: !!n.Internal, ipv6: !!n.EnableIPv6,
    subnets: ((n.IPAM?.Config ?? []) as Json[]).map((c) => ({ subnet: c.Subnet, ...(c.Gateway ? { gateway: c.Gateway } : {}), ...(c.IPRange ? { ipRange: c.IPRange } : {}) })),
    options: n.Options ?? {}, labels: n.Labels ?? {},
    containers: Object.fromEntries(Object.entries((n.Containers ?? {}) as Record<string, Json>).map(([id, c]) => [id, {
      name: c.Name, endpoint: c.EndpointID ?? '', ...(c.IPv4Address ? { ipv4: c.IPv4Address } : {}), ...(c.IPv6Address ? { ipv6: c.IPv6Address } : {}), ...(c.MacAddress ? { mac: c.MacAddress } : {}),
    }])),
    ...(n.Warnings ? { warnings: n.Warnings } : {}),
  };
}

export function volumeSummaryOf(v: Json): VolumeSummary {
  return {
    Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt, Labels: v.Labels ?? {}, Options: v.Options ?? {},
    Scope: 'local', UsedBy: v.UsedBy ?? [],
  };
}

/** Berth's `key=value` filters as the API's JSON map of lists. */
export function filtersJson(filters: readonly string[] | undefined): string | undefined {
  if (!filters?.length) return undefined;
  const out: Record<string, string[]> = {};
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    (out[key] ??= []).push(eq < 0 ? '' : f.slice(eq + 1));
  }
  return JSON.stringify(out);
}
