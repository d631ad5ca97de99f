import { InvalidArgumentError } from '../errors.js';
import type { LinuxDevice, LinuxDeviceCgroup } from '../../runtime-spec/types.js';
import type { DeviceInfo } from './types.js';

const rwm = (type: 'c' | 'b', major: number | undefined, minor: number | undefined, access = 'rwm'): LinuxDeviceCgroup => ({
  allow: true, type, ...(major === undefined ? {} : { major }), ...(minor === undefined ? {} : { minor }), access,
});

/**
 * Docker's device cgroup rules (moby oci/defaults.go): deny everything, then allow mknod of any node and
 * access to the standard character devices. runc creates the nodes themselves (null, zero, full, random,
 * urandom, tty, ptmx) without them being listed in linux.devices.
 */
export const DEFAULT_DEVICE_RULES: readonly LinuxDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  rwm('c', undefined, undefined, 'm'),
  rwm('b', undefined, undefined, 'm'),
  rwm('c', 1, 3), // /dev/null
  rwm('c', 1, 5), // /dev/zero
  rwm('c', 1, 7), // /dev/full
  rwm('c', 1, 8), // /dev/random
  rwm('c', 1, 9), // /dev/urandom
  rwm('c', 5, 0), // /dev/tty
  rwm('c', 5, 1), // /dev/console
  rwm('c', 5, 2), // /dev/ptmx
  rwm('c', 136, undefined), // /dev/pts/*
  rwm('c', 10, 200), // /dev/net/tun
];

/** --privileged: every device may be used. */
export const PRIVILEGED_DEVICE_RULES: readonly LinuxDeviceCgroup[] = [{ allow: true, access: 'rwm' }];

export interface DeviceMapping {
  device: LinuxDevice;
  rule: LinuxDeviceCgroup;
}

/** --device HOST[:CONTAINER][:PERMS]; the second field is PERMS when it is made of r, w and m only (Docker). */
export function parseDevice(text: string, devices: Record<string, DeviceInfo>): DeviceMapping {
  const parts = text.split(':');
  if (parts.length > 3 || !parts[0]) throw new InvalidArgumentError('--device', `"${text}" is not HOST[:CONTAINER[:PERMS]]`);
  const host = parts[0];
  let target = host;
  let perms = 'rwm';
  if (parts.length === 3) [, target = host, perms = 'rwm'] = parts;
  else if (parts.length === 2) {
    if (isPerms(parts[1]!)) perms = parts[1]!;
    else target = parts[1]!;
  }
  if (!host.startsWith('/') || !target.startsWith('/')) throw new InvalidArgumentError('--device', `"${text}": device paths must be absolute`);
  if (!isPerms(perms)) throw new InvalidArgumentError('--device', `"${text}": bad permissions "${perms}"`, 'use a combination of r, w and m');
  const info = devices[host];
  if (!info) throw new InvalidArgumentError('--device', `${host}: device numbers unknown`, 'give the path of a device node that exists on the host');
  return {
    device: { path: target, type: info.type, major: info.major, minor: info.minor, fileMode: info.fileMode & 0o777, uid: info.uid, gid: info.gid },
    rule: rwm(info.type, info.major, info.minor, perms),
  };
}

function isPerms(s: string): boolean {
  return /^[rwm]{1,3}$/.test(s) && new Set(s).size === s.length;
}
