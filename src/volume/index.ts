/**
 * The volume layer: volume objects (create, list, inspect, remove, prune) behind typed drivers (`local`
 * built in, others registered from the API), and the mounts of containers: the one parse of -v,
 * --mount, --volumes-from and the image's VOLUMEs at create (parse.ts), references that make a volume
 * "in use", mounting at start, and copy-up of the image's content into a new volume (copyup.ts).
 */
import type { StoreLayout } from '../paths.js';
import { VolumeManager, type VolumeManagerOptions } from './manager.js';

export { VolumeManager, ANONYMOUS_LABEL, ociMounts, type VolumeManagerOptions } from './manager.js';
export { planMounts, parseVolumeFlag, parseMountFlag, parseVolumesFrom, checkVolumeName, type MountRequest } from './parse.js';
export type { MountPoint, VolumeCreateRequest, VolumeDetails, VolumeDriver, VolumeInfo, VolumeRecord } from './types.js';

export function openVolumeManager(layout: StoreLayout, opts: VolumeManagerOptions): VolumeManager {
  return new VolumeManager(layout, opts);
}
