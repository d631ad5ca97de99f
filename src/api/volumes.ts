/** The volume layer's records shaped as Docker shows a volume (`volume ls`, `volume inspect`). */
import type { VolumeDetails } from '../volume/index.js';
import type { VolumeSummary } from '../types.js';

export function volumeView({ record: r, mountpoint, users }: VolumeDetails): VolumeSummary {
  return {
    Name: r.name, Driver: r.driver, Mountpoint: mountpoint, CreatedAt: r.createdAt, Labels: r.labels, Options: r.options, Scope: 'local', UsedBy: users,
  };
}

/** `docker volume inspect`'s shape. */
export function volumeInspectView(v: VolumeSummary): Record<string, unknown> {
  return {
    CreatedAt: v.CreatedAt, Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint, Name: v.Name, Options: v.Options, Scope: v.Scope,
  };
}
