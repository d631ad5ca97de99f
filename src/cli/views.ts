/**
 * The rows `ps`, `images` and `network ls` print, with the field names of Docker's format contexts
 * (`{{.ID}}`, `{{.Names}}`, `{{.Repository}}`...) so that users' --format strings keep working.
 */
import type { ContainerSummary, ImageSummary, NetworkSummary, VolumeSummary } from '../api/types.js';
export { networkInspectView } from '../api/networks.js';
export { volumeInspectView } from '../api/volumes.js';
import { ellipsis, formatLabels, formatPorts, goTime, humanSize, timeAgo, truncId } from './format.js';

export interface ContainerRow {
  ID: string;
  Names: string;
  Image: string;
  Command: string;
  CreatedAt: string;
  RunningFor: string;
  Ports: string;
  State: string;
  Status: string;
  Labels: string;
  Networks: string;
  Mounts: string;
  Size: string;
  /** Docker's method: `{{.Label "app"}}` is the value of one label ('' when the container has none) */
  Label: (name: string) => string;
}

export const CONTAINER_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
/** `ps -s`: Docker's table with the SIZE column last. */
export const CONTAINER_TABLE_SIZE = `${CONTAINER_TABLE}\t{{.Size}}`;
export const CONTAINER_HEADERS: ContainerRow = {
  ID: 'CONTAINER ID', Names: 'NAMES', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED',
  Ports: 'PORTS', State: 'STATE', Status: 'STATUS', Labels: 'LABELS', Networks: 'NETWORKS', Mounts: 'MOUNTS', Size: 'SIZE',
  Label: (_name) => 'LABEL',
};

/** Docker's SIZE: "2B (virtual 4.26MB)"; blank when sizes were not measured. */
export function containerSize(c: ContainerSummary): string {
  if (c.sizeRw === undefined) return '';
  const rw = humanSize(c.sizeRw);
  return c.sizeRootFs ? `${rw} (virtual ${humanSize(c.sizeRootFs)})` : rw;
}

export function containerRow(c: ContainerSummary, opts: { trunc: boolean; now?: number }): ContainerRow {
  return {
    ID: opts.trunc ? truncId(c.id) : c.id,
    Names: c.names.map((n) => n.replace(/^\//, '')).join(','),
    Image: c.image,
    // Docker quotes the command (strconv.Quote) after cutting it to 20 characters.
    Command: JSON.stringify(opts.trunc ? ellipsis(c.command, 20) : c.command),
    CreatedAt: goTime(c.created),
    RunningFor: timeAgo(c.created, opts.now),
    Ports: formatPorts(c.ports),
    State: c.state,
    Status: c.status,
    Labels: formatLabels(c.labels),
    Networks: c.networks.join(','),
    Mounts: '',
    Size: containerSize(c),
    Label: (name) => c.labels[name] ?? '',
  };
}

export interface ImageRow {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
}

export const IMAGE_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
export const IMAGE_TABLE_DIGESTS = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
export const IMAGE_HEADERS: ImageRow = {
  ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE',
};

/** One row per tag, as docker; an untagged image is one `<none> <none>` row. */
export function imageRows(img: ImageSummary, opts: { trunc: boolean; now?: number }): ImageRow[] {
  const base = {
    ID: opts.trunc ? truncId(img.id) : img.id,
    Digest: img.repoDigests[0]?.split('@')[1] ?? '<none>',
    CreatedSince: timeAgo(img.created, opts.now),
    CreatedAt: goTime(img.created),
    Size: humanSize(img.size),
  };
  if (!img.repoTags.length) return [{ ...base, Repository: '<none>', Tag: '<none>' }];
  // Docker (images --digests): a row shows the digest of its own repository, <none> when it has none.
  const digestOf = (repo: string) => img.repoDigests.find((d) => d.slice(0, d.lastIndexOf('@')) === repo)?.split('@')[1] ?? '<none>';
  return img.repoTags.map((ref) => {
    const row = splitTag(ref);
    return { ...base, ...row, Digest: digestOf(row.Repository) };
  });
}

/** "host:5000/a/b:tag" → repository "host:5000/a/b", tag "tag" (the colon after the last slash). */
export function splitTag(ref: string): { Repository: string; Tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { Repository: ref.slice(0, colon), Tag: ref.slice(colon + 1) };
  return { Repository: ref, Tag: '<none>' };
}

export interface NetworkRow {
  ID: string;
  Name: string;
  Driver: string;
  Scope: string;
  IPv6: string;
  Internal: string;
  CreatedAt: string;
  Labels: string;
  /** Docker's method: `{{.Label "k"}}` */
  Label: (name: string) => string;
}

export const NETWORK_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
export const NETWORK_HEADERS: NetworkRow = {
  ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', CreatedAt: 'CREATED AT', Labels: 'LABELS',
  Label: (_name) => 'LABEL',
};

export function networkRow(n: NetworkSummary, opts: { trunc: boolean }): NetworkRow {
  return {
    ID: opts.trunc ? truncId(n.id) : n.id,
    Name: n.name,
    Driver: n.driver,
    Scope: n.scope,
    IPv6: String(n.ipv6),
    Internal: String(n.internal),
    CreatedAt: goTime(n.created),
    Labels: formatLabels(n.labels),
    Label: (name) => n.labels[name] ?? '',
  };
}


export interface VolumeRow {
  Name: string;
  Driver: string;
  Scope: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: string;
  /** how many containers use it */
  Links: string;
  Label: (name: string) => string;
}

export const VOLUME_TABLE = 'table {{.Driver}}\t{{.Name}}';
export const VOLUME_HEADERS: VolumeRow = {
  Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', CreatedAt: 'CREATED AT', Labels: 'LABELS', Links: 'LINKS',
  Label: (_name) => 'LABEL',
};

export function volumeRow(v: VolumeSummary): VolumeRow {
  return {
    Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, CreatedAt: goTime(v.CreatedAt),
    Labels: formatLabels(v.Labels), Links: String(v.UsedBy.length), Label: (name) => v.Labels[name] ?? '',
  };
}

