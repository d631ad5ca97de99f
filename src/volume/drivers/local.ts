import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { isMounted, unmountTarget as unmount } from '../../storage/index.js';
import { run } from '../../util/exec.js';
import type { VolumeDriver, VolumeInfo } from '../types.js';

const KEYS = new Set(['type', 'device', 'o']);
/** o= options that are not for mount(8) itself, as Docker's local driver reads them */
const MOUNT_TIMEOUT_MS = 30_000;

/**
 * Docker's `local` driver: the data is `<volume>/_data`. With `-o type=...,device=...,o=...` the device
 * is mounted on `_data` while a container uses the volume (`type=tmpfs,device=tmpfs,o=size=64m`, or
 * `type=none,o=bind,device=/host/dir`), as `mount -t TYPE -o O DEVICE _data` would.
 */
export const localDriver: VolumeDriver = {
  name: 'local',

  checkOptions(options) {
    for (const key of Object.keys(options)) {
      if (!KEYS.has(key)) throw new InvalidArgumentError('--opt', `invalid option key: "${key}"`, 'the local driver takes type, device and o');
    }
    const { type, device, o } = options;
    if ((type === undefined) !== (device === undefined)) {
      throw new InvalidArgumentError('--opt', 'type and device go together', 'give both -o type=... and -o device=..., or neither');
    }
    if (o !== undefined && type === undefined) throw new InvalidArgumentError('--opt', 'o= needs a type and a device', 'add -o type=... -o device=...');
    if (type !== undefined && !/^[a-z0-9._-]+$/i.test(type)) throw new InvalidArgumentError('--opt', `"${type}" is not a file system type`);
    if (isBind(options)) {
      if (!path.isAbsolute(device!)) throw new InvalidArgumentError('--opt', `bind device "${device}" is not an absolute host path`);
    }
  },

  async create(vol) {
    await fsp.mkdir(this.mountpoint(vol), { recursive: true, mode: 0o755 });
  },

  async remove(vol) {
    // A device mounted over _data must never be deleted through: unmount first, then delete only our folder.
    await unmount(this.mountpoint(vol));
    await fsp.rm(this.mountpoint(vol), { recursive: true, force: true });
  },

  mountpoint(vol) {
    return path.join(vol.dir, '_data');
  },

  async mount(vol) {
    const { type, device, o } = vol.options;
    if (type === undefined) return;
    const target = this.mountpoint(vol);
    if (await isMounted(target)) return;
    if (isBind(vol.options)) {
      const st = await fsp.stat(device!).catch(() => undefined);
      if (!st?.isDirectory()) throw new InvalidArgumentError('volume', `the device ${device} of volume ${vol.name} is not a folder`, 'create the folder, or recreate the volume with another device');
    }
    await run('mount', ['-t', type, ...(o ? ['-o', o] : []), device!, target], { timeout: MOUNT_TIMEOUT_MS });
  },

  async unmount(vol) {
    if (vol.options.type === undefined) return;
    await unmount(this.mountpoint(vol));
  },

  volatile(vol) {
    return vol.options.type === 'tmpfs';
  },
};

function isBind(options: Readonly<Record<string, string>>): boolean {
  return (options.o ?? '').split(',').some((x) => x === 'bind' || x === 'rbind');
}

export type { VolumeInfo };
