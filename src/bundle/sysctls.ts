import { InvalidArgumentError } from '../errors.js';

/**
 * Sysctls a container may set: only namespaced ones (Docker's ValidateSysctl list), and only when the
 * container has its own namespace of that kind, since otherwise it would change the host.
 */
const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced'];

export interface SysctlContext {
  /** The container has a network namespace of its own (not --network host, not container:X). */
  privateNetwork: boolean;
  hostNetwork: boolean;
  hostIpc: boolean;
  /**
   * Rootless: the gids mapped in the user namespace that owns the container's network namespace. The kernel
   * takes only mapped gids in ping_group_range, so the default range ends at the last of them.
   */
  mappedGids?: number;
}

export const PING_GROUP_RANGE = 'net.ipv4.ping_group_range';
export const DEFAULT_PING_GROUPS = '0 2147483647';

/**
 * Docker's defaults for a container with its own network namespace: any user may bind low ports and use
 * ICMP sockets (ping without CAP_NET_RAW). Then the user's --sysctl, checked.
 */
export function buildSysctls(user: Record<string, string>, ctx: SysctlContext): Record<string, string> {
  const out: Record<string, string> = {};
  if (ctx.privateNetwork) {
    out['net.ipv4.ip_unprivileged_port_start'] = '0';
    out[PING_GROUP_RANGE] = ctx.mappedGids ? `0 ${ctx.mappedGids - 1}` : DEFAULT_PING_GROUPS;
  }
  for (const [key, value] of Object.entries(user)) {
    checkSysctl(key, ctx);
    out[key] = String(value);
  }
  return out;
}

function checkSysctl(key: string, ctx: SysctlContext): void {
  const ipc = IPC_SYSCTLS.includes(key) || key.startsWith('fs.mqueue.');
  if (ipc) {
    if (ctx.hostIpc) throw new InvalidArgumentError('--sysctl', `${key} cannot be set with --ipc host: it would change the host`);
    return;
  }
  if (key.startsWith('net.')) {
    if (ctx.hostNetwork) throw new InvalidArgumentError('--sysctl', `${key} cannot be set with --network host: it would change the host`);
    return;
  }
  throw new InvalidArgumentError('--sysctl', `${key} is not a namespaced sysctl, so a container may not set it`,
    'only net.*, fs.mqueue.* and the kernel IPC sysctls (kernel.msg*, kernel.sem, kernel.shm*) are allowed');
}
